"""Each lever of the DIRformer fast path alone: interleaved ours-vs-ours timings (issue 14).

Variants of our stage-2 network (same weights, same input), timed alternately:

* ``reference``: the official operator sequence (:func:`diffir_mm.archs.reference_path`);
* ``fast``: the fused channels-last path (default);
* ``fast-nchw-dw``: the fast path but every depth-wise convolution on an NCHW copy (what the
  channels-last layout gives).

Usage::

    python bench/bench_levers.py --preset sr_x4 --size 64 --threads 1 --repeats 3
    python bench/bench_levers.py --preset sr_x4 --size 64 --batch 2 --train
"""
from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from diffir_mm.archs import build_diffir, reference_path  # noqa: E402
from diffir_mm.archs import dirformer  # noqa: E402


@contextlib.contextmanager
def nchw_depthwise(net):
    """Depth-wise convolutions of the blocks run on NCHW copies of their input."""
    convs = [m for m in net.modules() if isinstance(m, dirformer.DynamicTransformerBlock)]
    convs = [c for b in convs for c in (b.attn.qkv_dwconv, b.ffn.dwconv)]
    for conv in convs:
        conv.forward = (lambda c: lambda x: F.conv2d(x.contiguous(), c.weight, c.bias, 1, 1,
                                                        1, c.groups))(conv)
    try:
        yield net
    finally:
        for conv in convs:
            del conv.forward


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--preset', default='sr_x4')
    parser.add_argument('--size', type=int, default=64)
    parser.add_argument('--batch', type=int, default=1)
    parser.add_argument('--train', action='store_true', help='forward + backward + Adam')
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--repeats', type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    net = build_diffir(args.preset, 2)
    net.train(args.train)
    channels = net.dirformer.patch_embed.proj.in_channels // net.dirformer.unshuffle ** 2
    lq = torch.rand(args.batch, channels, args.size, args.size)
    noise = torch.randn(args.batch, 256)
    teacher = torch.randn(args.batch, 256)
    optimiser = torch.optim.Adam(net.parameters(), 1e-6)

    def run():
        if not args.train:
            with torch.inference_mode():
                return net(lq, noise=noise)
        optimiser.zero_grad(set_to_none=True)
        image, steps = net.forward_train(lq, teacher)[:2]
        (image.abs().mean() + F.l1_loss(steps[-1], teacher)).backward()
        optimiser.step()

    variants = {'reference': lambda: reference_path(net), 'fast': contextlib.nullcontext,
                'fast-nchw-dw': lambda: nchw_depthwise(net)}
    times = {name: [] for name in variants}
    for name, ctx in variants.items():  # warm-up
        with ctx():
            run()
    for i in range(args.repeats):
        order = list(variants.items())
        for name, ctx in (order if i % 2 == 0 else order[::-1]):
            with ctx():
                start = time.perf_counter()
                run()
                times[name].append(time.perf_counter() - start)
    ref = statistics.median(times['reference'])
    print(f'{args.preset} {args.size}² batch {args.batch} {"train" if args.train else "infer"}, '
          f'{args.threads} thread(s)')
    for name, t in times.items():
        med = statistics.median(t)
        print(f'| {name} | {med:.2f} [{min(t):.2f}-{max(t):.2f}] s | {med / ref:.2f} |')
    return 0


if __name__ == '__main__':
    sys.exit(main())
