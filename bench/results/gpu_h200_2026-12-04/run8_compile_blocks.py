import sys
import time
import torch

sys.path.insert(0, ".")
sys.path.insert(0, "bench")
import torch._dynamo

for n in ("recompile_limit", "cache_size_limit"):
    if hasattr(torch._dynamo.config, n):
        setattr(torch._dynamo.config, n, 128)
from official_nets import build_pair  # noqa: E402 (the dynamo limits are set first)
from diffir_mm.inference.compilation import compile_blocks  # noqa: E402

off, net = build_pair("deblur")
off = off.eval().cuda()
net = net.eval().cuda()
x = torch.rand(1, 3, 1024, 1024, device="cuda")
noise = torch.randn(1, 256, device="cuda")


def t(fn, n=5):
    for _ in range(2):
        fn()
    torch.cuda.synchronize()
    s = time.perf_counter()
    for _ in range(n):
        fn()
    torch.cuda.synchronize()
    return (time.perf_counter() - s) / n * 1e3


def ours():
    with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16):
        return net(x, noise=noise)


def official():
    with torch.no_grad():
        return off(x)


o = t(official)
print("official fp32 eager %.1f ms" % o, flush=True)
compile_blocks(net)
c = t(ours)
print("ours bf16 compile-blocks %.1f ms, speed-up %.2fx" % (c, o / c), flush=True)
