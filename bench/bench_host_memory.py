"""What ``keep_freed_memory`` gives a fresh process: stage-2 inference with and without (issue 14).

Each setting runs in its own child process (the glibc setting is process-wide), on the full
released preset (random weights), fp32, ``--threads`` threads: median of ``--runs`` timed runs
after one warm-up, and the minor page faults of a run (``getrusage``).

Usage::

    python bench/bench_host_memory.py --preset deblur --size 256
    python bench/bench_host_memory.py --preset sr_x4 --size 64 --runs 5
"""
from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional, Sequence

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def child(preset: str, size: int, runs: int, threads: int, keep: bool) -> None:
    """Time the inference forward in this process and print one JSON line."""
    from diffir_mm.utils.host_memory import keep_freed_memory
    applied = keep_freed_memory() if keep else False
    import torch

    from diffir_mm.archs import build_diffir
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    net = build_diffir(preset, 2).eval()
    channels = net.dirformer.patch_embed.proj.in_channels // net.dirformer.unshuffle ** 2
    lq, noise = torch.rand(1, channels, size, size), torch.randn(1, 256)
    times, faults = [], []
    for _ in range(runs + 1):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        start = time.perf_counter()
        with torch.inference_mode():
            net(lq, noise=noise)
        times.append(time.perf_counter() - start)
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    print(json.dumps(dict(applied=applied, times=times[1:], faults=faults[1:])))


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--preset', default='deblur')
    parser.add_argument('--size', type=int, default=256)
    parser.add_argument('--runs', type=int, default=4)
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--child', choices=['0', '1'], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        child(args.preset, args.size, args.runs, args.threads, args.child == '1')
        return 0
    print(f'{args.preset} {args.size}², {args.threads} threads, median of {args.runs} runs')
    print('| glibc setting | median [min-max] (s) | page faults per run |\n|---|---|---|')
    for keep in ('0', '1'):
        out = subprocess.run([sys.executable, __file__, '--preset', args.preset, '--size',
                              str(args.size), '--runs', str(args.runs), '--threads',
                              str(args.threads), '--child', keep],
                             capture_output=True, text=True, check=True)
        res = json.loads(out.stdout.strip().splitlines()[-1])
        t = res['times']
        name = 'keep_freed_memory()' if res['applied'] else 'default'
        print(f'| {name} | {statistics.median(t):.2f} [{min(t):.2f}-{max(t):.2f}] | '
              f'{int(statistics.median(res["faults"]))} |')
    return 0


if __name__ == '__main__':
    sys.exit(main())
