"""Our DiffIR stage-2 networks against the official ones, measured in one run (issue 14).

For the full released presets (random weights, shared by both implementations) it times

* inference (``eval()`` under ``torch.inference_mode()``: ours takes its inference forward) at the
  paper's sizes: deblurring 256², SR x4 LR 64² and 256², inpainting 256² and 512²;
* one stage-2 training step (forward + backward + Adam; L1 image loss + L1 on the last IPR) at
  the official patch sizes: deblurring 192² batch 2, SR LR 64² batch 2, inpainting 256² batch 1;

interleaving official and ours (alternating which goes first) so that the shared machine's load
hits both alike, and reports median, min-max spread, ours/official, the largest output difference
and the compute floor (MACs / the fp32 GEMM rate measured here; a training step counts 3x the
forward MACs). ``--memory`` measures the peak RSS of one deblurring training step in a child
process, with and without block checkpointing.

The official code is imported by :mod:`official_nets` (the optional shared folder's
``reference/official_diffir``, ``$DIFFIR_SHARED`` or ``../shared``, or the ``.gpu_carry`` copy);
without it the script says so and exits 0.

Usage::

    python bench/bench_vs_official.py                        # everything, 3 interleaved repeats
    python bench/bench_vs_official.py --cases deblur sr_x4_64 --repeats 1 --no-train
    python bench/bench_vs_official.py --memory               # peak RSS, child processes
"""
from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / 'bench'))

from bench_archs import count_macs  # noqa: E402
from official_nets import build_pair, find_reference  # noqa: E402

from diffir_mm.archs import build_diffir  # noqa: E402
from diffir_mm.utils.host_memory import keep_freed_memory  # noqa: E402


@dataclass(frozen=True)
class Case:
    name: str
    preset: str
    shape: Tuple[int, int, int, int]
    train: bool


CASES = (
    Case('deblur_256', 'deblur', (1, 3, 256, 256), False),
    Case('sr_x4_64', 'sr_x4', (1, 3, 64, 64), False),
    Case('sr_x4_256', 'sr_x4', (1, 3, 256, 256), False),
    Case('inpaint_256', 'inpaint', (1, 4, 256, 256), False),
    Case('inpaint_512', 'inpaint', (1, 4, 512, 512), False),
    Case('train_deblur_192x2', 'deblur', (2, 3, 192, 192), True),
    Case('train_sr_x4_64x2', 'sr_x4', (2, 3, 64, 64), True),
    Case('train_inpaint_256', 'inpaint', (1, 4, 256, 256), True),
)


# --------------------------------------------------------------------------------- timing


def gemm_rate(threads: int, size: int = 1024, runs: int = 5) -> float:
    """Best fp32 GEMM rate of this machine in MAC/s (``size``³ matmuls)."""
    torch.set_num_threads(threads)
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    best = min(_time(lambda: a @ b) for _ in range(runs))
    return size ** 3 / best


def _time(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def inference_fns(official, ours, case: Case):
    official.eval()
    ours.eval()
    torch.manual_seed(1)
    x = torch.rand(case.shape)
    noise = torch.randn(case.shape[0], 256, generator=torch.Generator().manual_seed(2))

    def run_official():
        torch.manual_seed(2)  # the official eval forward draws x_T with torch.randn
        with torch.inference_mode():
            out = official(x)
        return out[0] if isinstance(out, tuple) else out

    def run_ours():
        with torch.inference_mode():
            return ours(x, noise=noise)

    macs_run = lambda: ours(x, noise=noise)  # noqa: E731
    return run_official, run_ours, macs_run


def _our_train_forward(net, lq, teacher):
    if hasattr(net, 'forward_train'):
        out = net.forward_train(lq, teacher)
        return out[0], out[1]
    return net(lq, teacher_prior=teacher)


def train_fns(official, ours, case: Case):
    official.train()
    ours.train()
    torch.manual_seed(1)
    b = case.shape[0]
    scale = ours.scale
    lq = torch.rand(case.shape)
    gt = torch.rand(b, 3, case.shape[2] * scale, case.shape[3] * scale)
    teacher = torch.randn(b, 256)
    optimisers = {id(official): torch.optim.Adam(official.parameters(), 1e-6),
                  id(ours): torch.optim.Adam(ours.parameters(), 1e-6)}

    def step(net, forward):
        optimiser = optimisers[id(net)]
        optimiser.zero_grad(set_to_none=True)
        image, steps = forward(net)
        loss = F.l1_loss(image, gt) + F.l1_loss(steps[-1], teacher)
        loss.backward()
        optimiser.step()
        return loss.detach()

    run_official = lambda: step(official, lambda n: n(lq, teacher))  # noqa: E731
    run_ours = lambda: step(ours, lambda n: _our_train_forward(n, lq, teacher))  # noqa: E731
    macs_run = lambda: _our_train_forward(ours, lq, teacher)  # noqa: E731
    return run_official, run_ours, macs_run


def bench_case(case: Case, repeats: int, warmup: int, rate: float) -> Dict[str, object]:
    official, ours = build_pair(case.preset)
    run_official, run_ours, macs_run = (train_fns if case.train else inference_fns)(
        official, ours, case)
    with torch.enable_grad():
        macs = count_macs(ours, macs_run)  # the reference path, every conv through its module
    macs *= 3 if case.train else 1
    diff = None
    if not case.train:
        diff = (run_official().double() - run_ours().double()).abs().max().item()
    else:
        diff = abs(run_official().item() - run_ours().item())  # loss of the same first step
    for _ in range(warmup):
        run_official(), run_ours()
    times: Dict[str, List[float]] = {'official': [], 'ours': []}
    for i in range(repeats):
        order = (('official', run_official), ('ours', run_ours))
        for name, fn in (order if i % 2 == 0 else order[::-1]):
            times[name].append(_time(fn))
    med = {k: statistics.median(v) for k, v in times.items()}
    return dict(case=case.name, gmacs=macs / 1e9, floor_s=macs / rate, times=times,
                median=med, ratio=med['ours'] / med['official'], max_diff=diff)


def format_rows(rows: Sequence[Dict[str, object]]) -> str:
    lines = ['| case | GMACs | floor (s) | official median [min-max] (s) | ours median [min-max] '
             '(s) | ours / official | ours / floor | max diff |', '|' + '---|' * 8]
    for r in rows:
        t, m = r['times'], r['median']
        lines.append(
            f"| {r['case']} | {r['gmacs']:.1f} | {r['floor_s']:.2f} | {m['official']:.2f} "
            f"[{min(t['official']):.2f}-{max(t['official']):.2f}] | {m['ours']:.2f} "
            f"[{min(t['ours']):.2f}-{max(t['ours']):.2f}] | **{r['ratio']:.2f}** | "
            f"{m['ours'] / r['floor_s']:.1f} | {r['max_diff']:.1e} |")
    return '\n'.join(lines)


# -------------------------------------------------------------------------------- profile

#: Operator-name fragments -> category of the profile summary (first match wins).
CATEGORIES = (
    ('conv', ('convolution', 'conv2d', 'mkldnn_conv', 'slow_conv')),
    ('matmul', ('bmm', 'addmm', 'aten::mm', 'matmul', 'baddbmm', 'linear')),
    ('reduction', ('mean', 'sum', 'var', 'norm', 'max', 'amax')),
    ('softmax/gelu', ('softmax', 'gelu')),
    ('copies', ('copy_', 'clone', 'contiguous', 'cat', 'pixel_', 'col2im', 'im2col', 'fill_',
                'zero_', 'empty_strided')),
    ('optimiser', ('_foreach', 'adam', 'lerp', 'addcmul', 'addcdiv', 'sqrt')),
    ('element-wise', ('mul', 'add', 'sub', 'div', 'rsqrt', 'pow', 'square', 'where', 'neg',
                      'clamp', 'abs', 'sign', 'exp')),
)


def _category(name: str) -> str:
    lowered = name.lower()
    for category, fragments in CATEGORIES:
        if any(f in lowered for f in fragments):
            return category
    return 'other'


def profile_case(case: Case, rows: int) -> str:
    """Per-operator self-CPU tables (top ``rows``) and category shares, official vs ours."""
    from torch.profiler import ProfilerActivity, profile

    official, ours = build_pair(case.preset)
    run_official, run_ours, _ = (train_fns if case.train else inference_fns)(official, ours, case)
    run_official(), run_ours()  # warm-up (and the Adam state of a training step)
    out = []
    shares = {}
    for name, fn in (('official', run_official), ('ours', run_ours)):
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            fn()
        events = [e for e in prof.key_averages() if e.self_cpu_time_total > 0]
        total = sum(e.self_cpu_time_total for e in events)
        events.sort(key=lambda e: -e.self_cpu_time_total)
        out.append(f'\n{case.name}, {name}: {total / 1e6:.2f} s self CPU, top {rows} operators\n')
        out.append('| operator | calls | self CPU (s) | share |\n|---|---|---|---|')
        for e in events[:rows]:
            out.append(f'| `{e.key}` | {e.count} | {e.self_cpu_time_total / 1e6:.3f} | '
                       f'{100 * e.self_cpu_time_total / total:.1f} % |')
        groups: Dict[str, float] = {}
        for e in events:
            key = _category(e.key)
            groups[key] = groups.get(key, 0.0) + e.self_cpu_time_total / 1e6
        shares[name] = groups
    names = [c for c, _ in CATEGORIES] + ['other']
    out.append(f'\n{case.name}: self CPU by category, seconds (official / ours)\n')
    out.append('| ' + ' | '.join(names) + ' |\n|' + '---|' * len(names))
    off, our = shares['official'], shares['ours']
    out.append('| ' + ' | '.join(f'{off.get(n, 0):.2f} / {our.get(n, 0):.2f}' for n in names)
               + ' |')
    return '\n'.join(out)


# --------------------------------------------------------------------------------- memory


def memory_child(size: int, with_cp: bool, threads: int) -> None:
    """One deblurring stage-2 training step at ``size``² batch 1; prints the peak RSS in GB."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    net = build_diffir('deblur', 2, with_cp=with_cp).train()
    optimiser = torch.optim.Adam(net.parameters(), 1e-6)
    lq, gt = torch.rand(1, 3, size, size), torch.rand(1, 3, size, size)
    teacher = torch.randn(1, 256)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20
    start = time.perf_counter()
    image, steps = _our_train_forward(net, lq, teacher)
    (F.l1_loss(image, gt) + F.l1_loss(steps[-1], teacher)).backward()
    optimiser.step()
    elapsed = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20
    print(f'RESULT {peak:.3f} {base:.3f} {elapsed:.1f}')


def memory_table(threads: int, sizes: Sequence[Tuple[int, bool]]) -> str:
    lines = ['| deblur S2 training step, batch 1 | with_cp | peak RSS (GB) | RSS before the step '
             '(GB) | step time (s) |', '|---|---|---|---|---|']
    peaks = {}
    for size, with_cp in sizes:
        out = subprocess.run([sys.executable, __file__, '--memory-child', str(size),
                              str(int(with_cp)), '--threads', str(threads)],
                             capture_output=True, text=True)
        result = [line for line in out.stdout.splitlines() if line.startswith('RESULT')]
        if not result:
            lines.append(f'| {size}² | {with_cp} | failed: {out.stderr.strip()[-200:]} | | |')
            continue
        peak, base, elapsed = map(float, result[0].split()[1:])
        peaks[(size, with_cp)] = peak
        lines.append(f'| {size}² | {with_cp} | {peak:.2f} | {base:.2f} | {elapsed:.1f} |')
    for size in {s for s, _ in sizes}:
        if (size, True) in peaks and (size, False) in peaks:
            lines.append(f'\n{size}²: with / without checkpointing = '
                         f'{peaks[(size, True)] / peaks[(size, False)]:.2f}')
    return '\n'.join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--cases', nargs='+', choices=[c.name for c in CASES],
                        default=[c.name for c in CASES])
    parser.add_argument('--no-train', action='store_true', help='skip the training steps')
    parser.add_argument('--repeats', type=int, default=3, help='interleaved timed repeats')
    parser.add_argument('--warmup', type=int, default=1, help='untimed pairs first')
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--memory', action='store_true',
                        help='peak RSS of a deblurring training step (child processes) only')
    parser.add_argument('--memory-sizes', nargs='+', default=['256:0', '256:1', '512:1'],
                        help='SIZE:WITH_CP pairs for --memory')
    parser.add_argument('--profile', type=int, default=0, metavar='N',
                        help='print the top-N operators (torch.profiler) of the cases instead')
    parser.add_argument('--keep-freed-memory', action='store_true',
                        help='glibc keeps freed memory for reuse (diffir_mm.utils.host_memory), '
                             'for both implementations: what the CLI and tools/ run with')
    parser.add_argument('--memory-child', nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.keep_freed_memory and not keep_freed_memory():
        print('--keep-freed-memory: no glibc mallopt here, running with the defaults')
    if args.memory_child:
        memory_child(args.memory_child[0], bool(args.memory_child[1]), args.threads)
        return 0
    torch.set_num_threads(args.threads)
    if args.memory:
        sizes = [(int(s), bool(int(c))) for s, c in (p.split(':') for p in args.memory_sizes)]
        print(memory_table(args.threads, sizes))
        return 0
    if find_reference() is None:
        print('official reference not found (the shared folder\'s reference/official_diffir or '
              '.gpu_carry/official_diffir): nothing to compare, skipping')
        return 0
    if args.profile:
        for case in CASES:
            if case.name in args.cases and not (case.train and args.no_train):
                print(profile_case(case, args.profile), flush=True)
        return 0
    rate = gemm_rate(args.threads)
    print(f'torch {torch.__version__}, {args.threads} threads, fp32 GEMM rate '
          f'{rate / 1e9:.1f} GMAC/s, {args.repeats} interleaved repeats after {args.warmup} '
          f'warm-up, keep freed memory: {args.keep_freed_memory}')
    rows = []
    for case in CASES:
        if case.name in args.cases and not (case.train and args.no_train):
            rows.append(bench_case(case, args.repeats, args.warmup, rate))
            print(format_rows(rows[-1:]).splitlines()[-1], flush=True)
    print('\n' + format_rows(rows))
    return 0


if __name__ == '__main__':
    sys.exit(main())
