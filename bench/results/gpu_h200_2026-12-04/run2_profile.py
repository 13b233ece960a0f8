import sys
import time
import torch

sys.path.insert(0, ".")
sys.path.insert(0, "bench")
from official_nets import build_pair
from torch.profiler import profile, ProfilerActivity

dev = "cuda"
torch.backends.cuda.matmul.allow_tf32 = False
off, ours = build_pair("deblur")
off = off.eval().to(dev)
ours = ours.eval().to(dev)
x = torch.rand(1, 3, 1024, 1024, device=dev)
noise = torch.randn(1, 256, device=dev)


def run_ours():
    with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16):
        return ours(x, noise=noise)


def run_off():
    with torch.no_grad():
        return off(x)


for name, fn in [("ours-bf16", run_ours), ("official-fp32", run_off)]:
    for _ in range(2):
        fn()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA, ProfilerActivity.CPU]) as p:
        fn()
        torch.cuda.synchronize()
    print("=====", name)
    print(p.key_averages().table(sort_by="cuda_time_total", row_limit=22, max_name_column_width=70))


# micro: skinny matmul (1,1,48,1M)@(1,1,1M,48) and dwconv
def t(fn, n=20):
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    s = time.perf_counter()
    for _ in range(n):
        fn()
    torch.cuda.synchronize()
    return (time.perf_counter() - s) / n * 1e3


hw = 1024 * 1024
for dt in (torch.float32, torch.bfloat16):
    a = torch.randn(1, 1, 48, hw, device=dev, dtype=dt)
    b = torch.randn(1, 1, hw, 48, device=dev, dtype=dt)
    at = torch.randn(1, hw, 1, 48, device=dev, dtype=dt).permute(0, 2, 3, 1)
    print("skinny", dt, "contig %.3f ms" % t(lambda: a @ b), "permuted %.3f ms" % t(lambda: at @ b))
torch.backends.cuda.matmul.allow_tf32 = True
a = torch.randn(1, 1, 48, hw, device=dev)
b = torch.randn(1, 1, hw, 48, device=dev)
print("skinny tf32 %.3f ms" % t(lambda: a @ b))
torch.backends.cuda.matmul.allow_tf32 = False
for dt in (torch.float32, torch.bfloat16):
    w = torch.randn(288, 1, 3, 3, device=dev, dtype=dt)
    xc = torch.randn(1, 288, 1024, 1024, device=dev, dtype=dt)
    xl = xc.contiguous(memory_format=torch.channels_last)
    f = torch.nn.functional.conv2d
    print(
        "dwconv288",
        dt,
        "nchw %.3f ms" % t(lambda: f(xc, w, padding=1, groups=288)),
        "cl %.3f ms" % t(lambda: f(xl, w, padding=1, groups=288)),
    )
    tok = torch.randn(hw, 48, device=dev, dtype=dt)
    wt = torch.randn(48, 288, device=dev, dtype=dt)
    print("1x1 gemm 1M x 48 x 288", dt, "%.3f ms" % t(lambda: tok @ wt))
