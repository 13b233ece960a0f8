import sys
import time
import torch

sys.path.insert(0, ".")
from diffir_mm.archs.fused import pixel_gram


def t(fn, n=20):
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    s = time.perf_counter()
    for _ in range(n):
        fn()
    torch.cuda.synchronize()
    return (time.perf_counter() - s) / n * 1e3


for hw, c, heads in [(1 << 20, 48, 1), (1 << 20, 96, 1), (1 << 18, 96, 2)]:
    qkv = torch.randn(1, hw, 3 * c, device="cuda")
    q, k, _ = qkv.split(c, -1)
    ref = pixel_gram(q.double(), k.double(), heads, chunk=hw)
    res = []
    for ch in (4096, 16384, 65536):
        res.append("fp32 chunk %d %.3f" % (ch, t(lambda: pixel_gram(q, k, heads, chunk=ch))))
    qb, kb = q.bfloat16(), k.bfloat16()
    try:
        b, _, _ = q.shape
        qh = qb.reshape(1, hw, heads, c // heads).permute(0, 2, 3, 1).reshape(heads, c // heads, hw)
        kh = kb.reshape(1, hw, heads, c // heads).transpose(1, 2).reshape(heads, hw, c // heads)
        def f():
            return torch.bmm(qh, kh, out_dtype=torch.float32)
        o = f()
        err = ((o.double() - ref.reshape(heads, c // heads, c // heads)).norm() / ref.norm()).item()
        res.append("bf16 out_dtype fp32 %.3f err %.1e" % (t(f), err))
    except Exception as e:
        res.append("out_dtype: %s" % str(e)[:80])
    print(hw, c, heads, " | ".join(res), flush=True)
