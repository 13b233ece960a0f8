"""CPU latency and MACs of the DiffIR networks at the paper's input sizes.

Measures, for the full released presets (random weights; latency does not depend on them):

* latency of stage 2 (``net(lq)``: CPEN_S2 + 4 diffusion steps + DIRformer) and of the DIRformer
  alone, fp32 on CPU with ``torch.set_num_threads(2)`` under ``torch.inference_mode()``: the median
  of a few runs after one warm-up run;
* multiply-accumulates, counted with forward hooks on ``Conv2d``/``Linear`` plus the two attention
  matmuls (``q @ k^T`` and ``A @ v``; LayerNorm, GELU and element-wise operations are excluded), on
  the ``meta`` device so no arithmetic is done. They must reproduce the counts of
  ``docs/advanced_guides/method.md`` §2.5, which is checked for every row there (exit code 1 if a
  figure does not match).

Usage::

    python bench/bench_archs.py                 # 1 warm-up + 3 timed runs per measurement
    python bench/bench_archs.py --quick         # one (cold) run per measurement
    python bench/bench_archs.py --json out.json --profile 12

The official latencies are those reported in the issue for the authors' code on this machine type
(2-core CPU, fp32, stage 2). Close other CPU-heavy processes first: with 2 OpenMP threads, a busy
core slows the network down by an order of magnitude. Timed runs during which other processes used
more than ``--max-foreign`` cores (read from ``/proc/stat``) are discarded and repeated, and the
table reports how many were.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from diffir_mm.archs import IPR_DIM, DynamicAttention, build_diffir, reference_path  # noqa: E402

Shape = Tuple[int, int, int, int]


@dataclass(frozen=True)
class Case:
    """One timed configuration (paper's input size)."""

    name: str
    preset: str
    shape: Shape
    official_s2_s: float  # official stage-2 latency on this machine type (from the issue)
    expected_s2_gmacs: float  # docs/advanced_guides/method.md §2.5


CASES: Tuple[Case, ...] = (
    Case('deblur', 'deblur', (1, 3, 256, 256), 6.5, 121.0),
    Case('sr_x4', 'sr_x4', (1, 3, 64, 64), 0.9, 45.2),
    Case('inpaint', 'inpaint', (1, 4, 256, 256), 1.5, 50.6),
)

#: Every MACs figure of section 1.13: (preset, stage, input shape, GMACs).
MAC_REFERENCE: Tuple[Tuple[str, int, Shape, float], ...] = (
    ('deblur', 1, (1, 3, 256, 256), 121.1),
    ('deblur', 2, (1, 3, 256, 256), 121.0),
    ('sr_x4', 1, (1, 3, 64, 64), 45.3),
    ('sr_x4', 2, (1, 3, 64, 64), 45.2),
    ('sr_x4', 2, (1, 3, 256, 256), 722.5),
    ('sr_x2', 2, (1, 3, 128, 128), 45.2),
    ('sr_x1', 2, (1, 3, 256, 256), 45.4),
    ('inpaint', 1, (1, 4, 256, 256), 50.7),
    ('inpaint', 2, (1, 4, 256, 256), 50.6),
    ('inpaint', 2, (1, 4, 512, 512), 202.2),
    ('inpaint_big', 2, (1, 4, 256, 256), 70.5),
)


# --------------------------------------------------------------------------------------- MACs


def count_macs(module: nn.Module, run: Callable[[], object]) -> int:
    """Multiply-accumulates of ``run()``, counted with forward hooks on ``module``'s children.

    Counted: ``Conv2d`` (``out.numel() * in/groups * kh * kw``), ``Linear``
    (``out.numel() * in_features``) and, for every :class:`DynamicAttention`, its two matmuls
    ``q @ k^T`` and ``A @ v`` (``B * heads * (C/heads)^2 * H*W`` each). Biases, LayerNorm, GELU,
    softmax and element-wise operations are not counted. The blocks run the reference path
    (:func:`~diffir_mm.archs.reference_path`) so that every convolution goes through its module:
    the count is the official operator sequence's.
    """
    total = 0

    def conv_hook(m: nn.Conv2d, inputs, out: torch.Tensor) -> None:
        nonlocal total
        kh, kw = m.kernel_size
        total += out.numel() * (m.in_channels // m.groups) * kh * kw

    def linear_hook(m: nn.Linear, inputs, out: torch.Tensor) -> None:
        nonlocal total
        total += out.numel() * m.in_features

    def attention_hook(m: DynamicAttention, inputs, out: torch.Tensor) -> None:
        nonlocal total
        b, c, h, w = inputs[0].shape
        total += 2 * b * m.num_heads * (c // m.num_heads) ** 2 * h * w

    handles = []
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            handles.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            handles.append(m.register_forward_hook(linear_hook))
        elif isinstance(m, DynamicAttention):
            handles.append(m.register_forward_hook(attention_hook))
    try:
        with reference_path(module):
            run()
    finally:
        for h in handles:
            h.remove()
    return total


def network_macs(preset: str, stage: int, shape: Shape, dirformer_only: bool = False) -> int:
    """MACs of one forward of a released preset, traced on the ``meta`` device."""
    with torch.device('meta'):
        net = build_diffir(preset, stage).eval()
        x = torch.empty(shape)
        if dirformer_only:
            prior = torch.empty(shape[0], IPR_DIM)
            run = lambda: net.dirformer(x, prior)  # noqa: E731
        elif stage == 1:
            scale = net.scale
            gt = torch.empty(shape[0], 3, shape[2] * scale, shape[3] * scale)
            run = lambda: net(x, gt)  # noqa: E731
        else:
            run = lambda: net(x)  # noqa: E731
        with torch.enable_grad():  # the reference path: the folded one bypasses the hooks
            return count_macs(net, run)


# ------------------------------------------------------------------------------------ latency


def _busy_cpu_seconds() -> Optional[float]:
    """CPU-seconds all processes have spent busy so far (``/proc/stat``), None if unknown."""
    try:
        with open('/proc/stat') as f:
            fields = [int(v) for v in f.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq + steal) / os.sysconf('SC_CLK_TCK')


def timed_call(fn: Callable[[], object]) -> Tuple[float, Optional[float]]:
    """Wall-clock seconds of ``fn()`` and the CPU cores other processes used meanwhile."""
    busy0, own0, start = _busy_cpu_seconds(), time.process_time(), time.perf_counter()
    fn()
    elapsed = time.perf_counter() - start
    own, busy1 = time.process_time() - own0, _busy_cpu_seconds()
    foreign = None if busy0 is None or busy1 is None else max(0.0, (busy1 - busy0 - own)
                                                               / elapsed)
    return elapsed, foreign


def time_runs(fn: Callable[[], object], runs: int, warmup: int, max_foreign: float = 0.25,
              max_attempts: Optional[int] = None) -> Tuple[List[float], int, int]:
    """Wall-clock seconds of ``runs`` calls of ``fn`` after ``warmup`` untimed calls.

    A run during which other processes kept more than ``max_foreign`` CPU cores busy (read from
    ``/proc/stat``) is discarded and repeated, up to ``max_attempts`` runs in all (default
    ``3 * runs``); after that the disturbed runs are kept.

    Returns:
        The kept times, the number of discarded runs and the number of disturbed runs kept.
    """
    for _ in range(warmup):
        fn()
    max_attempts = max_attempts or 3 * runs
    clean: List[float] = []
    disturbed: List[float] = []
    while len(clean) < runs and len(clean) + len(disturbed) < max_attempts:
        elapsed, foreign = timed_call(fn)
        (disturbed if foreign is not None and foreign > max_foreign else clean).append(elapsed)
    kept_disturbed = sorted(disturbed)[:runs - len(clean)]
    return clean + kept_disturbed, len(disturbed) - len(kept_disturbed), len(kept_disturbed)


@dataclass
class Row:
    """One line of the result table."""

    case: str
    part: str  # 'stage 2' or 'DIRformer'
    input: str
    gmacs: float
    expected_gmacs: Optional[float]
    times_s: List[float] = field(default_factory=list)
    median_s: float = float('nan')
    official_s: Optional[float] = None
    discarded_runs: int = 0
    disturbed_kept: int = 0

    @property
    def ratio(self) -> Optional[float]:
        return self.median_s / self.official_s if self.official_s else None


def bench_case(case: Case, runs: int, warmup: int, profile_rows: int = 0,
               max_foreign: float = 0.25) -> List[Row]:
    """Latency and MACs of stage 2 and of the DIRformer alone for ``case``."""
    torch.manual_seed(0)
    net = build_diffir(case.preset, 2).eval()
    lq = torch.rand(case.shape)
    prior = torch.randn(case.shape[0], IPR_DIM)
    size = f'{case.shape[1]}x{case.shape[2]}x{case.shape[3]}'
    rows = []
    for part, fn, dirformer_only in (
            ('stage 2', lambda: net(lq), False),
            ('DIRformer', lambda: net.dirformer(lq, prior), True)):
        with torch.inference_mode():
            times, discarded, kept_disturbed = time_runs(fn, runs, warmup, max_foreign)
            if profile_rows and part == 'stage 2':
                profile(fn, f'{case.name} {part}', profile_rows)
        gmacs = network_macs(case.preset, 2, case.shape, dirformer_only) / 1e9
        rows.append(Row(case.name, part, size, gmacs,
                        case.expected_s2_gmacs if part == 'stage 2' else None, times,
                        statistics.median(times),
                        case.official_s2_s if part == 'stage 2' else None, discarded,
                        kept_disturbed))
    return rows


def profile(fn: Callable[[], object], title: str, rows: int) -> None:
    """Print the operators that take the most CPU time in one call of ``fn``."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    with torch_profile(activities=[ProfilerActivity.CPU], record_shapes=False) as prof:
        fn()
    print(f'\n--- torch.profiler: {title} (one run) ---')
    print(prof.key_averages().table(sort_by='self_cpu_time_total', row_limit=rows))


# ------------------------------------------------------------------------------------- report


def mac_check() -> List[Dict[str, object]]:
    """MACs of every row of section 1.13, with the reference value."""
    results = []
    for preset, stage, shape, expected in MAC_REFERENCE:
        gmacs = network_macs(preset, stage, shape) / 1e9
        results.append(dict(preset=preset, stage=stage, input=list(shape), gmacs=gmacs,
                            expected_gmacs=expected, match=abs(gmacs - expected) <= 0.06))
    return results


def format_latency(rows: Sequence[Row]) -> str:
    header = ('| case | part | input (C×H×W) | GMACs | §1.13 GMACs | ours median (s) | min (s) '
              '| official (s) | ours / official | disturbed runs: discarded / kept |')
    lines = [header, '|' + '---|' * 10]
    for r in rows:
        lines.append('| {} | {} | {} | {:.1f} | {} | {:.3f} | {:.3f} | {} | {} | {} |'.format(
            r.case, r.part, r.input, r.gmacs,
            f'{r.expected_gmacs:.1f}' if r.expected_gmacs else '–', r.median_s, min(r.times_s),
            f'{r.official_s:.1f}' if r.official_s else '–',
            f'{r.ratio:.2f}' if r.ratio is not None else '–',
            f'{r.discarded_runs} / {r.disturbed_kept}'))
    return '\n'.join(lines)


def format_macs(results: Sequence[Dict[str, object]]) -> str:
    lines = ['| preset | stage | input | GMACs | §1.13 | match |', '|' + '---|' * 6]
    for r in results:
        shape = r['input']
        lines.append(f"| {r['preset']} | S{r['stage']} | {shape[1]}x{shape[2]}x{shape[3]} | "
                     f"{r['gmacs']:.2f} | {r['expected_gmacs']:.1f} | "
                     f"{'yes' if r['match'] else 'NO'} |")
    return '\n'.join(lines)


def environment() -> Dict[str, object]:
    cpu = platform.processor()
    try:
        with open('/proc/cpuinfo') as f:
            cpu = next(line.split(':', 1)[1].strip() for line in f
                       if line.startswith('model name'))
    except (OSError, StopIteration):
        pass
    return dict(torch=torch.__version__, python=platform.python_version(), cpu=cpu,
                cores=os.cpu_count(), threads=torch.get_num_threads(),
                load_average=os.getloadavg() if hasattr(os, 'getloadavg') else None)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--quick', action='store_true',
                        help='one run per measurement, no warm-up (rough numbers)')
    parser.add_argument('--runs', type=int, default=3, help='timed runs (default 3)')
    parser.add_argument('--warmup', type=int, default=1, help='untimed runs first (default 1)')
    parser.add_argument('--threads', type=int, default=2, help='torch threads (default 2)')
    parser.add_argument('--cases', nargs='+', choices=[c.name for c in CASES],
                        default=[c.name for c in CASES])
    parser.add_argument('--max-foreign', type=float, default=0.25, metavar='CORES',
                        help='repeat a timed run if other processes used more CPU cores than '
                             'this meanwhile (default 0.25; up to 3x the runs)')
    parser.add_argument('--skip-macs', action='store_true',
                        help='skip the MACs check of every section-1.13 row')
    parser.add_argument('--profile', type=int, default=0, metavar='N',
                        help='also print the top-N operators of one stage-2 run per case')
    parser.add_argument('--json', type=Path, default=None, metavar='OUT',
                        help='write all results to this JSON file')
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    runs, warmup = (1, 0) if args.quick else (args.runs, args.warmup)
    torch.set_num_threads(args.threads)
    env = environment()
    print(f"torch {env['torch']} | {env['cpu']} | {env['cores']} cores | "
          f"{env['threads']} threads | load average {env['load_average']}")
    busy = _busy_cpu_seconds()
    time.sleep(1.0)
    if busy is not None:
        others = _busy_cpu_seconds() - busy
        env['busy_cores_at_start'] = round(others, 2)
        if others > 0.25:
            print(f'WARNING: other processes keep {others:.1f} cores busy; disturbed runs are '
                  'repeated (--max-foreign) but latencies may still be unreliable.')

    macs = [] if args.skip_macs else mac_check()
    if macs:
        print('\nMACs (meta-device trace) vs method.md §2.5\n' + format_macs(macs))

    rows: List[Row] = []
    for case in CASES:
        if case.name in args.cases:
            rows.extend(bench_case(case, runs, warmup, args.profile, args.max_foreign))
    print(f'\nCPU fp32 latency, {args.threads} threads, inference_mode, median of {runs} '
          f"run(s) after {warmup} warm-up (runs disturbed by other processes repeated)\n"
          + format_latency(rows))

    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        payload = dict(environment=env, runs=runs, warmup=warmup, macs=macs,
                       latency=[dict(asdict(r), ratio=r.ratio) for r in rows])
        args.json.write_text(json.dumps(payload, indent=2))
        print(f'\nwrote {args.json}')
    return 0 if all(m['match'] for m in macs) else 1


if __name__ == '__main__':
    sys.exit(main())
