"""GPU throughput and memory of the DiffIR deblurring network (needs only diffir_mm.archs + torch).

Rows: inference of stage 2 (folded path, ``torch.inference_mode()``) in bf16 / fp16 / fp32, eager
/ ``torch.compile`` / CUDA graphs, batch 1 and batched tiles, at 256², 1024² and 1280x720; and
one stage-2 training step (forward + backward + Adam, fp32 and bf16 autocast) at 512² batch 1
with and without block checkpointing. Each row: median latency over ``--runs`` after warm-up,
images/s and the CUDA peak memory.

Usage::

    python bench/bench_gpu.py                 # full table on a CUDA machine (~5 min on an H100)
    python bench/bench_gpu.py --smoke         # tiny network, tiny inputs: runs on CPU too

Without a CUDA device (and without ``--smoke``) it prints "no CUDA device" and exits 0.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from diffir_mm.archs import build_diffir  # noqa: E402

DTYPES = {'fp32': torch.float32, 'bf16': torch.bfloat16, 'fp16': torch.float16}
SMOKE_NET = dict(dim=8, num_blocks=[1, 1, 1, 1], num_refinement_blocks=1, n_encoder_res=1)


def _sync(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def _measure(fn: Callable[[], object], device: torch.device, runs: int, warmup: int
             ) -> Dict[str, float]:
    for _ in range(warmup):
        fn()
    _sync(device)
    if device.type == 'cuda':
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    peak = torch.cuda.max_memory_allocated(device) / 2 ** 30 if device.type == 'cuda' else 0.0
    return dict(median=statistics.median(times), min=min(times), max=max(times), peak_gb=peak)


def inference_fn(net, x: torch.Tensor, noise: torch.Tensor, mode: str, device: torch.device
                 ) -> Callable[[], object]:
    """``net(x)`` in eager / compile / CUDA-graph ``mode``."""
    def eager():
        with torch.inference_mode():
            return net(x, noise=noise)

    if mode == 'eager':
        return eager
    if mode == 'compile':
        compiled = torch.compile(net.dirformer)

        def run():
            with torch.inference_mode():
                prior = net.estimate_prior(x, noise=noise)
                return compiled(x, prior)
        return run
    if mode == 'graph':
        if device.type != 'cuda':
            raise RuntimeError('CUDA graphs need a CUDA device')
        static_out = None
        stream = torch.cuda.Stream(device)
        stream.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(stream):
            for _ in range(2):
                eager()
        torch.cuda.current_stream(device).wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.inference_mode(), torch.cuda.graph(graph):
            static_out = net(x, noise=noise)

        def replay():
            graph.replay()
            return static_out
        return replay
    raise ValueError(mode)


def train_fn(net, size: int, device: torch.device, amp: Optional[torch.dtype]):
    optimiser = torch.optim.Adam(net.parameters(), 1e-6)
    lq = torch.rand(1, 3, size, size, device=device)
    gt = torch.rand(1, 3, size, size, device=device)
    teacher = torch.randn(1, 256, device=device)

    def step():
        optimiser.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
            if hasattr(net, 'forward_train'):
                image, steps = tuple(net.forward_train(lq, teacher))[:2]
            else:
                image, steps = net(lq, teacher_prior=teacher)
            loss = F.l1_loss(image.float(), gt) + F.l1_loss(steps[-1].float(), teacher)
        loss.backward()
        optimiser.step()
    return step


def run(device: torch.device, smoke: bool, runs: int, warmup: int,
        modes: Sequence[str], dtypes: Sequence[str]) -> List[Dict[str, object]]:
    overrides = SMOKE_NET if smoke else {}
    sizes = [('256²', 1, 256, 256), ('256² tiles x8', 8, 256, 256), ('1024²', 1, 1024, 1024),
             ('1280x720', 1, 720, 1280)]
    train_size = 512
    if smoke:
        sizes, train_size = [('32²', 1, 32, 32), ('32² tiles x2', 2, 32, 32)], 32
    rows = []
    for dtype_name in dtypes:
        torch.manual_seed(0)
        net = build_diffir('deblur', 2, **overrides).eval().to(device, DTYPES[dtype_name])
        for label, batch, h, w in sizes:
            x = torch.rand(batch, 3, h, w, device=device, dtype=DTYPES[dtype_name])
            noise = torch.randn(batch, 256, device=device, dtype=DTYPES[dtype_name])
            for mode in modes:
                if mode == 'graph' and device.type != 'cuda':
                    continue
                try:
                    stats = _measure(inference_fn(net, x, noise, mode, device), device, runs,
                                     warmup)
                except Exception as err:  # noqa: BLE001 - report the row, keep going
                    rows.append(dict(kind='inference', dtype=dtype_name, size=label, mode=mode,
                                     error=f'{type(err).__name__}: {str(err)[:80]}'))
                    continue
                rows.append(dict(kind='inference', dtype=dtype_name, size=label, mode=mode,
                                 images_s=batch / stats['median'], **stats))
        del net
    for with_cp in (False, True):
        for amp in (None, torch.bfloat16):
            torch.manual_seed(0)
            net = build_diffir('deblur', 2, with_cp=with_cp, **overrides).train().to(device)
            try:
                stats = _measure(train_fn(net, train_size, device, amp), device, runs, warmup)
                rows.append(dict(kind='train step', dtype='bf16 autocast' if amp else 'fp32',
                                 size=f'{train_size}²', mode=f'with_cp={with_cp}',
                                 images_s=1 / stats['median'], **stats))
            except torch.cuda.OutOfMemoryError as err:
                rows.append(dict(kind='train step', dtype='bf16 autocast' if amp else 'fp32',
                                 size=f'{train_size}²', mode=f'with_cp={with_cp}',
                                 error=f'out of memory: {str(err)[:60]}'))
            del net
    return rows


def format_rows(rows: Sequence[Dict[str, object]]) -> str:
    lines = ['| kind | dtype | size | mode | median [min-max] (s) | images/s | peak mem (GB) |',
             '|' + '---|' * 7]
    for r in rows:
        if 'error' in r:
            lines.append(f"| {r['kind']} | {r['dtype']} | {r['size']} | {r['mode']} | "
                         f"{r['error']} | | |")
            continue
        lines.append(f"| {r['kind']} | {r['dtype']} | {r['size']} | {r['mode']} | "
                     f"{r['median']:.4f} [{r['min']:.4f}-{r['max']:.4f}] | "
                     f"{r['images_s']:.2f} | {r['peak_gb']:.2f} |")
    return '\n'.join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--smoke', action='store_true',
                        help='tiny network and inputs (runs on CPU when there is no GPU)')
    parser.add_argument('--runs', type=int, default=5)
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--modes', nargs='+', choices=['eager', 'compile', 'graph'],
                        help='default: all three on CUDA, eager on CPU')
    parser.add_argument('--dtypes', nargs='+', default=list(DTYPES), choices=list(DTYPES))
    args = parser.parse_args(argv)
    if torch.cuda.is_available():
        device = torch.device('cuda')
        print(f'device: {torch.cuda.get_device_name(device)}, torch {torch.__version__}')
        torch.backends.cuda.matmul.allow_tf32 = False  # fp32 rows are true fp32
    elif args.smoke:
        device = torch.device('cpu')
        print('no CUDA device: smoke run on CPU')
    else:
        print('no CUDA device: nothing to measure (use --smoke for a CPU check)')
        return 0
    modes = args.modes or (['eager', 'compile', 'graph'] if device.type == 'cuda' else ['eager'])
    rows = run(device, args.smoke, args.runs, args.warmup, modes, args.dtypes)
    print(format_rows(rows))
    return 0


if __name__ == '__main__':
    sys.exit(main())
