import sys
import time
import torch

sys.path.insert(0, ".")
sys.path.insert(0, "bench")
from torch.profiler import profile, ProfilerActivity
from diffir_mm.archs import build_diffir
from diffir_mm.inference.compilation import compile_blocks

dev = "cuda"
torch.manual_seed(0)
net = build_diffir("deblur", 2).eval().to(dev)
x = torch.rand(1, 3, 1024, 1024, device=dev)
noise = torch.randn(1, 256, device=dev)


def run():
    with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16):
        return net(x, noise=noise)


def t(fn, n=5):
    for _ in range(2):
        fn()
    torch.cuda.synchronize()
    s = time.perf_counter()
    for _ in range(n):
        fn()
    torch.cuda.synchronize()
    return (time.perf_counter() - s) / n * 1e3


def prof(name):
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as p:
        run()
        torch.cuda.synchronize()
    print("=====", name, flush=True)
    print(
        p.key_averages().table(
            sort_by="self_cuda_time_total", row_limit=18, max_name_column_width=60
        ),
        flush=True,
    )


print("eager bf16 %.1f ms" % t(run), flush=True)
prof("eager bf16")
compile_blocks(net)
print("compile-blocks bf16 %.1f ms" % t(run), flush=True)
prof("compile-blocks bf16")
torch.backends.cuda.matmul.allow_tf32 = True
torch.backends.cudnn.allow_tf32 = True
print("compile-blocks bf16 + tf32 %.1f ms" % t(run), flush=True)
