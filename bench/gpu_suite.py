"""One prepared GPU suite: ours against the official DiffIR networks, inference and training.

Made for one run of a few minutes on a lent GPU machine (issue 24): every row is measured in the
same process, in priority order, under a wall-clock budget, and written as soon as it is
measured (``rows.jsonl`` + ``gpu_suite.md`` in ``--out``, rewritten atomically after each row),
so a run cut short still returns everything measured so far. Each row runs in its own
``try``/``except``: an out-of-memory error or a failure becomes a row saying so.

Sections, in the order they run (each starts rows until its share of the budget is used,
``SECTION_ENDS``; what one leaves goes to the next):

0. ceilings measured here -- device copy bandwidth (bytes read + written), bf16 and fp32 (TF32
   off) matrix-multiply rates -- and correctness: ours against the official network (same
   random weights, input and start vector; fp32 with TF32 off: max abs difference), bf16 against
   fp32 (relative error ``|a - b| / |b|``), NaN/Inf check;
1. stage-2 deblurring inference at 1024²: the official network in fp32 eager (``torch.no_grad``,
   as users run it today) against ours in fp32 / bf16 autocast (the Restorer's policy: prior in
   fp32, DIRformer under autocast) / bf16 weights, eager / CUDA graph / ``torch.compile`` (per
   transformer block, or the whole DIRformer), and the Restorer's defaults end to end;
2. the issue's training goal: one deblurring step at 512² batch 1, with and without ``with_cp``;
3. every task at its paper sizes, 1024² and 1280x720 (SR x4: LR 64², LR 256² -> 1024², LR
   320x180 -> 1280x720), batch 1 and batched tiles, without compilation;
4. training: one stage-2 step (forward + backward + Adam; L1 image + L1 to the teacher IPR, as
   ``bench_vs_official.py``) under bf16 autocast, with and without ``with_cp``: deblurring 256²,
   384², 512² batch 1-8 (a batch that fails, e.g. out of memory, ends its sweep), SR x4 LR 64²
   batch 4-32 and inpainting 256² batch 1-8; the official network's fp32 step at 512² beside
   ours in fp32;
5. section 3's shapes compiled (the faster compile mode of section 1; compile + CUDA graphs for
   the small, launch-bound inputs) while the budget lasts.

Inference rows report the median latency (synchronised wall clock after warm-up, at least
``--runs`` runs), images/s, the CUDA peak memory of the timed runs, the speed-up over the official
fp32-eager row of the same shape, and the roofline floor: ``max(MACs / bf16 rate, bytes / copy
bandwidth)``. MACs are counted by ``bench_archs.count_macs`` (official operator sequence); bytes
are an estimate of the least traffic of a fully fused bf16 implementation: every convolution
reads its input once and writes its output once (norms, modulation, GELU, residual adds fused
into them), attention reads q and k once more for the scores, each block reads its residual
twice, plus the convolution weights; 2 bytes per value.

Usage::

    python bench/gpu_suite.py --prepare              # copy the official code into .gpu_carry/
    PYTHONUNBUFFERED=1 python3 bench/gpu_suite.py --out $OUT --budget-s 380   # on the GPU
    python bench/gpu_suite.py --smoke --out /tmp/s   # tiny networks on the CPU, < 1 min
    python bench/gpu_suite.py --sizes-scale 0.0625 --compile-backend eager --out /tmp/d
                                                      # full networks, small sizes (CPU dry run)

Without a CUDA device and without ``--smoke`` / ``--sizes-scale`` it prints a line and exits 0.
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import gc
import json
import math
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / 'bench'))

from bench_archs import count_macs  # noqa: E402
from official_nets import (CARRY, build_pair, find_reference, prepare_carry,  # noqa: E402
                           shared_folder)

from diffir_mm.archs import (IPR_DIM, DynamicAttention, DynamicTransformerBlock,  # noqa: E402
                             build_diffir, pad_to_multiple)
from diffir_mm.inference.compilation import compile_blocks  # noqa: E402
from diffir_mm.inference.io import write_bytes_atomic  # noqa: E402

#: Tiny networks of ``--smoke`` (inpainting has no refinement stage).
SMOKE_NET = dict(dim=8, num_blocks=[1, 1, 1, 1], num_refinement_blocks=1, n_encoder_res=1)
#: Fractions of the budget at which the sections stop starting rows, in the order they run.
SECTION_ENDS = {'correctness': 0.08, 'deblur-1024': 0.55, 'train-goal': 0.60,
                'inference': 0.78, 'train': 0.97, 'inference-compiled': 1.0}
#: Cost guesses (s) of a first call before anything of the kind was measured: full / smoke.
FIRST_GUESS = {'eager': (4.0, 0.5), 'compile-blocks': (75.0, 5.0), 'compile': (150.0, 8.0),
               'compile-ro': (150.0, 8.0), 'train': (10.0, 1.0)}
#: Timed steps of a training row (after its first, untimed one).
TRAIN_RUNS = 3
#: The run stops this long after the budget, whatever it is doing (SIGALRM).
GRACE_S = 25
#: Memory of the CUDA context and allocator slack assumed by the "fits on" columns (GiB).
CONTEXT_GIB = 1.0
CARDS_GIB = (24, 40, 80)
BF16 = torch.bfloat16


class HardDeadline(BaseException):
    """The wall-clock budget plus its grace period ran out (raised by SIGALRM)."""


# ---------------------------------------------------------------------------------- recording


class Recorder:
    """Collects rows; rewrites ``rows.jsonl`` and ``gpu_suite.md`` atomically after each."""

    def __init__(self, out: Path, start: float) -> None:
        self.out = out
        self.start = start
        self.rows: List[Dict[str, Any]] = []
        self.env: Dict[str, Any] = {}
        out.mkdir(parents=True, exist_ok=True)

    def add(self, row: Dict[str, Any]) -> Dict[str, Any]:
        row = {k: v for k, v in row.items() if v is not None}
        row['t_s'] = round(time.monotonic() - self.start, 1)
        self.rows.append(row)
        self.flush()
        try:
            line = describe(row)
        except Exception:  # noqa: BLE001 - a progress line must not lose the row
            line = json.dumps(row, default=str)
        print(f"[{row['t_s']:6.1f}s] {line}", flush=True)
        return row

    def flush(self) -> None:
        lines = ''.join(json.dumps(r, sort_keys=True, default=str) + '\n' for r in self.rows)
        write_bytes_atomic(str(self.out / 'rows.jsonl'), lines.encode())
        try:
            report = render(self.rows, self.env)
        except Exception as err:  # noqa: BLE001 - the rows are saved; say why the table is not
            report = f'# GPU suite\n\nrendering failed: {type(err).__name__}: {err}\n'
        write_bytes_atomic(str(self.out / 'gpu_suite.md'), report.encode())

    def write_env(self, env: Dict[str, Any]) -> None:
        self.env = env
        write_bytes_atomic(str(self.out / 'env.json'), json.dumps(env, indent=1).encode())


def describe(row: Dict[str, Any]) -> str:
    """One progress line for ``row``."""
    keys = ('kind', 'name', 'task', 'size', 'impl', 'precision', 'mode')
    what = ' '.join(str(row[k]) for k in keys if k in row)
    if row.get('batch', 1) != 1:
        what += f" b{row['batch']}"
    if 'with_cp' in row:
        what += f" with_cp={row['with_cp']}"
    if row.get('status') != 'ok':
        return f"{what}: {row.get('status')} {row.get('note', '')}".rstrip()
    shown = (('median_s', '{:.2f} ms', 1e3), ('images_s', '{:.2f} img/s', 1),
             ('peak_alloc_gib', 'peak {:.2f} GiB', 1), ('speedup', 'x{:.2f} vs official', 1),
             ('x_floor', '{:.2f}x floor', 1), ('value', '{:.4g} ' + row.get('unit', ''), 1))
    parts = [fmt.format(row[key] * scale) for key, fmt, scale in shown if key in row]
    if 'note' in row:
        parts.append(row['note'])
    return f"{what}: {', '.join(parts)}"


def _ms(row: Dict[str, Any]) -> str:
    if 'median_s' not in row:
        return ''
    return (f"{row['median_s'] * 1e3:.2f} [{row['min_s'] * 1e3:.2f}-{row['max_s'] * 1e3:.2f}] "
            f"x{row['runs']}")


def _status(row: Dict[str, Any]) -> str:
    status = row.get('status', '?')
    return status if status == 'ok' and 'note' not in row else \
        f"{status}: {row.get('note', '')}".replace('|', '/')


def _fits(row: Dict[str, Any]) -> str:
    if 'fits_gib' not in row:
        return ''
    return ' / '.join('yes' if g in row['fits_gib'] else 'no' for g in CARDS_GIB)


#: kind -> (title, [(column, row key or function, format)]), in the report's order.
TABLES: Dict[str, Tuple[str, List[Tuple[str, Any, str]]]] = {
    'ceiling': ('Ceilings measured in this run', [
        ('quantity', 'name', ''), ('value', 'value', '.4g'), ('unit', 'unit', '')]),
    'correctness': ('Correctness (same random weights, input and start vector)', [
        ('task', 'task', ''), ('input', 'size', ''),
        ('max abs diff official vs ours, fp32 (TF32 off)', 'max_abs_diff_fp32', '.2e'),
        ('rel. error bf16 autocast vs fp32', 'rel_err_bf16_autocast', '.2e'),
        ('rel. error bf16 weights vs fp32', 'rel_err_bf16_weights', '.2e'),
        ('all finite', 'finite', '')]),
    'floor': ('Roofline floors (bf16; bytes: see the module notes)', [
        ('task', 'task', ''), ('input', 'size', ''), ('batch', 'batch', ''),
        ('GMACs', 'gmacs', '.1f'), ('GB moved (estimate)', 'gbytes', '.3g'),
        ('compute floor (ms)', 'compute_floor_ms', '.2f'),
        ('memory floor (ms)', 'memory_floor_ms', '.2f'), ('floor (ms)', 'floor_ms', '.2f')]),
    'inference': ('Inference, stage 2', [
        ('task', 'task', ''), ('input', 'size', ''), ('batch', 'batch', ''),
        ('impl', 'impl', ''), ('precision', 'precision', ''), ('mode', 'mode', ''),
        ('median [min-max] (ms) x runs', _ms, ''), ('images/s', 'images_s', '.2f'),
        ('peak alloc (GiB)', 'peak_alloc_gib', '.2f'),
        ('speed-up vs official fp32 eager', 'speedup', '.2f'), ('x floor', 'x_floor', '.2f'),
        ('first call (s)', 'first_call_s', '.1f')]),
    'train': ('Training step, stage 2 (forward + backward + Adam; "fits": peak reserved + '
              f'{CONTEXT_GIB:.0f} GiB of context <= the card)', [
        ('task', 'task', ''), ('patch', 'size', ''), ('batch', 'batch', ''),
        ('impl', 'impl', ''), ('precision', 'precision', ''), ('with_cp', 'with_cp', ''),
        ('step median [min-max] (ms) x runs', _ms, ''), ('images/s', 'images_s', '.2f'),
        ('peak alloc (GiB)', 'peak_alloc_gib', '.2f'),
        ('peak reserved (GiB)', 'peak_reserved_gib', '.2f'),
        ('fits 24 / 40 / 80 GiB', _fits, '')]),
}


def _cell(row: Dict[str, Any], key: Any, fmt: str) -> str:
    if callable(key):
        return key(row)
    if key not in row:
        return ''
    return format(row[key], fmt) if fmt else str(row[key])


def render(rows: Sequence[Dict[str, Any]], env: Dict[str, Any]) -> str:
    """The markdown report of ``rows`` (one table per kind, then the goals)."""
    out = ['# GPU suite', '']
    if env:
        out += [f"{env.get('device', '?')}, torch {env.get('torch')}, CUDA {env.get('cuda')}, "
                f"Python {env.get('python')}, budget {env.get('budget_s')} s, "
                f"{env.get('started', '')}", '']
    for kind, (title, columns) in TABLES.items():
        chosen = [r for r in rows if r.get('kind') == kind]
        if not chosen:
            continue
        out += [f'## {title}', '', '| ' + ' | '.join(c for c, _, _ in columns) + ' | status |',
                '|' + '---|' * (len(columns) + 1)]
        out += ['| ' + ' | '.join(_cell(r, key, fmt) for _, key, fmt in columns)
                + f' | {_status(r)} |' for r in chosen]
        out.append('')
    out += ['## Goals (issue 24)', ''] + goal_lines(rows) + ['']
    return '\n'.join(out)


def goal_lines(rows: Sequence[Dict[str, Any]]) -> List[str]:
    """The issue's goals as measured: 1024² deblurring speed-up and floor, 512² training."""
    lines = []
    main = [r for r in rows if r['kind'] == 'inference' and r.get('section') == 'deblur-1024'
            and r['status'] == 'ok' and r['impl'] != 'official' and 'median_s' in r]
    if main:
        best = min(main, key=lambda r: r['median_s'] / r['batch'])
        lines.append(f"- deblurring {best['size']}: best of ours = {best['precision']} "
                     f"{best['mode']}, {best['median_s'] * 1e3:.2f} ms; speed-up over the "
                     f"official fp32 eager: {best.get('speedup', float('nan')):.2f}x (goal >= 4); "
                     f"{best.get('x_floor', float('nan')):.2f}x the roofline floor (goal <= 3)")
    else:
        lines.append('- deblurring 1024²: not measured')
    goal = [r for r in rows if r['kind'] == 'train' and r.get('section') == 'train-goal'
            and r['impl'] == 'ours']
    for r in goal:
        if r['status'] != 'ok' or 'fits_gib' not in r:
            verdict = 'ok (no CUDA memory figures)' if r['status'] == 'ok' else _status(r)
        else:
            verdict = (f"{r['peak_reserved_gib']:.2f} GiB reserved, "
                       f"{'fits' if 40 in r['fits_gib'] else 'does NOT fit'} in 40 GiB")
        lines.append(f"- deblurring training {r['size']} batch {r['batch']}, {r['precision']}, "
                     f"with_cp={r['with_cp']}: {verdict}")
    return lines


# ---------------------------------------------------------------------------------- helpers


class Budget:
    """Wall clock of the run: the total and the fraction each section may use."""

    def __init__(self, seconds: float) -> None:
        self.start = time.monotonic()
        self.total = seconds

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def left(self, section: Optional[str] = None) -> float:
        """Seconds left in the run, or until ``section``'s end."""
        end = self.total * (SECTION_ENDS[section] if section else 1.0)
        return end - self.elapsed()


def sync(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def cleanup(device: torch.device) -> None:
    gc.collect()
    if device.type == 'cuda':
        torch.cuda.empty_cache()


def peak_gib(device: torch.device) -> Dict[str, float]:
    if device.type != 'cuda':
        return {}
    return dict(peak_alloc_gib=torch.cuda.max_memory_allocated(device) / 2 ** 30,
                peak_reserved_gib=torch.cuda.max_memory_reserved(device) / 2 ** 30)


def measure(fn: Callable[[], Any], device: torch.device, runs: int, warmup: int,
            max_s: float, min_total: float = 0.3) -> Dict[str, Any]:
    """Time ``fn``: first call, ``warmup - 1`` more, then at least ``runs`` timed calls.

    Fast calls are repeated until ``min_total`` s of timed runs (at most 50); slow ones stop
    after 3 runs once ``max_s`` is used up. Peak memory covers the timed runs only.

    Returns:
        The statistics and the output of the last call.
    """
    start = time.perf_counter()
    fn()
    sync(device)
    first = time.perf_counter() - start
    for _ in range(max(0, warmup - 1)):
        fn()
    sync(device)
    if device.type == 'cuda':
        torch.cuda.reset_peak_memory_stats(device)
    times: List[float] = []
    spent = time.perf_counter() - start
    while True:
        t0 = time.perf_counter()
        out = fn()
        sync(device)
        times.append(time.perf_counter() - t0)
        spent += times[-1]
        if len(times) >= 50 or (len(times) >= runs and sum(times) >= min_total):
            break
        if len(times) >= min(3, runs) and spent >= max_s:
            break
    return dict(first_call_s=first, median_s=statistics.median(times), min_s=min(times),
                max_s=max(times), runs=len(times), **peak_gib(device)), out


def _tf32_state() -> Tuple[Optional[str], Optional[bool], Optional[bool]]:
    """(matmul precision, cuDNN TF32, cuDNN benchmark); None where this torch refuses."""
    state = []
    for read in (torch.get_float32_matmul_precision, lambda: torch.backends.cudnn.allow_tf32,
                 lambda: torch.backends.cudnn.benchmark):
        try:
            state.append(read())
        except RuntimeError:  # e.g. a torch that forbids mixing its old and new TF32 settings
            state.append(None)
    return tuple(state)  # type: ignore[return-value]


def _set_flags(matmul: Optional[str], tf32_conv: Optional[bool],
               cudnn_benchmark: Optional[bool]) -> None:
    setters = ((matmul, torch.set_float32_matmul_precision),
               (tf32_conv, lambda v: setattr(torch.backends.cudnn, 'allow_tf32', v)),
               (cudnn_benchmark, lambda v: setattr(torch.backends.cudnn, 'benchmark', v)))
    for value, setter in setters:
        if value is not None:
            try:
                setter(value)
            except RuntimeError as err:  # recorded by the caller's row if it matters
                print(f'warning: cannot set a TF32/cuDNN flag: {err}', flush=True)


@contextlib.contextmanager
def torch_flags(tf32_matmul: Optional[bool] = None, tf32_conv: Optional[bool] = None,
                cudnn_benchmark: Optional[bool] = None) -> Iterator[None]:
    """Set TF32 / cuDNN-benchmark flags inside the block (None: leave as is)."""
    saved = _tf32_state()
    matmul = None if tf32_matmul is None else ('high' if tf32_matmul else 'highest')
    try:
        _set_flags(matmul, tf32_conv, cudnn_benchmark)
        yield
    finally:
        _set_flags(*saved)


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    """``|a - b| / |b|`` (Frobenius norms, float64)."""
    a, b = a.double(), b.double()
    return float((a - b).norm() / b.norm().clamp_min(1e-30))


def all_finite(out: torch.Tensor) -> bool:
    return bool(torch.isfinite(out).all())


def dynamo_counts() -> Tuple[int, int]:
    """(graph breaks, unique graphs) counted by dynamo so far."""
    from torch._dynamo.utils import counters
    return sum(counters['graph_break'].values()), int(counters['stats']['unique_graphs'])


def raise_compile_limits() -> None:
    """Recompile once per input shape and block width without falling back to eager."""
    cfg = torch._dynamo.config
    for name, value in (('recompile_limit', 128), ('cache_size_limit', 128),
                        ('accumulated_recompile_limit', 2048),
                        ('accumulated_cache_size_limit', 2048)):
        try:
            setattr(cfg, name, value)
        except (AttributeError, TypeError, ValueError):  # a name this torch does not have
            pass


# ---------------------------------------------------------------------------------- cases


@dataclass(frozen=True)
class Shape:
    """A network input: ``preset`` at (batch, H, W); ``label`` names the user-facing size."""

    task: str
    preset: str
    batch: int
    h: int
    w: int
    label: str

    @property
    def channels(self) -> int:
        return 4 if self.task == 'inpaint' else 3

    @property
    def key(self) -> Tuple[str, int, int, int]:
        return (self.preset, self.batch, self.h, self.w)


#: task -> released preset benchmarked for it.
PRESETS = {'deblur': 'deblur', 'sr': 'sr_x4', 'inpaint': 'inpaint'}

#: Section 2: (task, batch, H, W, label) in priority order; paper sizes first.
INFERENCE_CASES = (
    ('deblur', 1, 256, 256, '256²'),
    ('sr', 1, 64, 64, 'LR 64² -> 256²'),
    ('inpaint', 1, 256, 256, '256²'),
    ('inpaint', 1, 512, 512, '512²'),
    ('sr', 1, 256, 256, 'LR 256² -> 1024²'),
    ('inpaint', 1, 1024, 1024, '1024²'),
    ('deblur', 1, 720, 1280, '1280x720'),
    ('sr', 1, 180, 320, 'LR 320x180 -> 1280x720'),
    ('inpaint', 1, 720, 1280, '1280x720'),
    ('deblur', 8, 256, 256, '8 tiles of 256²'),
    ('sr', 16, 64, 64, '16 tiles of LR 64²'),
    ('inpaint', 8, 256, 256, '8 tiles of 256²'),
)
#: Section 2 cases that also get compile + CUDA graphs (``mode='reduce-overhead'``).
REDUCE_OVERHEAD_CASES = (('sr', 1, 64, 64), ('deblur', 1, 256, 256))

#: ``--smoke``: the first case of each task, compiled once.
SMOKE_INFERENCE_CASES = INFERENCE_CASES[:3]

#: Section 3: (task, patch H = W, batches, with_cp values).
TRAIN_SWEEP = (
    ('deblur', 256, (1, 2, 4, 8), (False, True)),
    ('deblur', 384, (1, 2, 4, 8), (False, True)),
    ('deblur', 512, (1, 2, 4, 8), (False, True)),
    ('sr', 64, (4, 8, 16, 32), (False, True)),
    ('inpaint', 256, (1, 2, 4, 8), (False, True)),
)
#: ``--smoke``: every row kind once.
SMOKE_TRAIN_SWEEP = (
    ('deblur', 256, (1, 2), (False,)),
    ('sr', 64, (2,), (False,)),
    ('inpaint', 256, (1,), (True,)),
)


# ---------------------------------------------------------------------------------- the suite


class Suite:
    """Runs the sections; holds the networks of one preset at a time."""

    def __init__(self, args: argparse.Namespace, device: torch.device, rec: Recorder,
                 budget: Budget) -> None:
        self.args = args
        self.device = device
        self.rec = rec
        self.budget = budget
        self.smoke = args.smoke
        self.min_total = 0.0 if args.smoke else 0.3
        self.reference = find_reference(args.reference)
        self.rates: Dict[str, float] = {}
        self.first_calls: Dict[str, float] = {}
        self.work: Dict[Tuple, Tuple[int, int]] = {}
        self.official_s: Dict[Tuple, float] = {}
        self._preset: Optional[str] = None
        self._nets: Dict[str, Any] = {}

    # ---------------------------------------------------------------- networks and inputs
    def overrides(self, preset: str, **extra: Any) -> Dict[str, Any]:
        if not self.smoke:
            return extra
        net = dict(SMOKE_NET, **extra)
        if preset.startswith('inpaint'):
            net['num_refinement_blocks'] = 0
        return net

    def size(self, n: int) -> int:
        """A spatial size scaled by ``--sizes-scale`` (multiples of 8)."""
        return max(8, int(round(n * self.args.sizes_scale / 8)) * 8)

    def shape(self, task: str, batch: int, h: int, w: int, label: str) -> Shape:
        sh, sw = self.size(h), self.size(w)
        if (sh, sw) != (h, w):
            label = f'{label} (scaled: {sw}x{sh})'
        return Shape(task, PRESETS[task], batch, sh, sw, label)

    def release(self) -> None:
        """Drop the networks held for inference rows; compiled copies also drop dynamo's
        caches (every compiled block shares one code object, whose guards pile up)."""
        compiled = any(isinstance(k, tuple) and k[0] == 'compiled' for k in self._nets)
        self._nets, self._preset = {}, None
        if compiled:
            torch._dynamo.reset()
        cleanup(self.device)

    def nets(self, preset: str) -> Dict[str, Any]:
        """``{'ours', 'official' (or None), 'why'}`` for ``preset`` (eval, on the device)."""
        if self._preset == preset:
            return self._nets
        self.release()
        nets: Dict[str, Any] = {'official': None, 'why': None}
        if self.reference is None:
            nets['why'] = ('official reference not found (run bench/gpu_suite.py --prepare, or '
                           'set DIFFIR_SHARED / put the shared folder beside the repository)')
            torch.manual_seed(0)
            nets['ours'] = build_diffir(preset, 2, **self.overrides(preset))
        else:
            try:
                nets['official'], nets['ours'] = build_pair(preset, self.reference,
                                                            **self.overrides(preset))
                nets['official'] = nets['official'].eval().to(self.device)
            except Exception as err:  # noqa: BLE001 - ours still runs; rows say why
                nets['why'] = f'official network failed to build: {type(err).__name__}: {err}'
                torch.manual_seed(0)
                nets['ours'] = build_diffir(preset, 2, **self.overrides(preset))
        nets['ours'] = nets['ours'].eval().to(self.device)
        self._nets, self._preset = nets, preset
        return nets

    def inputs(self, shape: Shape, dtype: torch.dtype = torch.float32
               ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Network input (inpainting: masked image + mask) and the start vector ``x_T``."""
        gen = torch.Generator(device=self.device).manual_seed(1)
        x = torch.rand(shape.batch, 3, shape.h, shape.w, device=self.device, generator=gen)
        if shape.task == 'inpaint':
            mask = (torch.rand(shape.batch, 1, shape.h, shape.w, device=self.device,
                               generator=gen) > 0.7).float()
            x = torch.cat([x * (1 - mask), mask], dim=1)
        noise = torch.randn(shape.batch, IPR_DIM, device=self.device, generator=gen)
        return x.to(dtype), noise.to(dtype)

    # ---------------------------------------------------------------- budget
    def guess(self, kind: str) -> float:
        """Expected cost (s) of a row of ``kind``: measured before, or a guess."""
        if kind in self.first_calls:
            return self.first_calls[kind]
        if kind == 'compile' and 'compile-blocks' in self.first_calls:
            return 2 * self.first_calls['compile-blocks']  # one graph of every block
        return FIRST_GUESS[kind][1 if self.smoke else 0]

    def affordable(self, section: str, cost: float) -> Optional[str]:
        """None when a row costing ``cost`` s fits the section and the run, else why not."""
        if cost > self.budget.left():
            return f'budget: ~{cost:.0f} s needed, {max(0, self.budget.left()):.0f} s left'
        if cost > self.budget.left(section):
            return (f'budget: ~{cost:.0f} s needed, {max(0, self.budget.left(section)):.0f} s '
                    f'left in section {section}')
        return None

    def guarded(self, base: Dict[str, Any], body: Callable[[Dict[str, Any]], None]) -> Dict:
        """Run ``body(row)`` and record the row; OOM and failures become the row's status."""
        row = dict(base, status='ok')
        try:
            body(row)
        except torch.cuda.OutOfMemoryError as err:
            row.update(status='oom', note=str(err).split('\n')[0][:160])
        except Exception as err:  # noqa: BLE001 - one failing row must not stop the suite
            row.update(status='error', note=f'{type(err).__name__}: {str(err)[:300]}')
        finally:
            cleanup(self.device)
        return self.rec.add(row)

    # ---------------------------------------------------------------- section 0
    def ceilings(self) -> None:
        dev = self.device
        small = self.smoke or dev.type != 'cuda'  # CPU dry runs: the code path only
        n_copy = 2 ** 16 if small else 2 ** 28  # fp32 values: 1 GiB
        n_mm = 256 if small else 8192
        reps = 3 if small else 10

        def best(fn: Callable[[], Any]) -> float:
            fn()
            sync(dev)
            times = []
            for _ in range(reps):
                t0 = time.perf_counter()
                fn()
                sync(dev)
                times.append(time.perf_counter() - t0)
            return min(times)

        def copy_row(row: Dict[str, Any]) -> None:
            src = torch.empty(n_copy, device=dev).uniform_()
            dst = torch.empty_like(src)
            t = best(lambda: dst.copy_(src))
            self.rates['bw'] = 2 * 4 * n_copy / t
            row.update(value=self.rates['bw'] / 1e9, unit='GB/s',
                       note=f'copy of {4 * n_copy / 2 ** 30:.3g} GiB, read + write counted')

        def mm_row(row: Dict[str, Any], dtype: torch.dtype, key: str) -> None:
            a = torch.randn(n_mm, n_mm, device=dev, dtype=dtype)
            b = torch.randn(n_mm, n_mm, device=dev, dtype=dtype)
            with torch_flags(tf32_matmul=False):
                t = best(lambda: a @ b)
            self.rates[key] = n_mm ** 3 / t  # MAC/s
            row.update(value=2 * self.rates[key] / 1e12, unit='TFLOP/s',
                       note=f'{n_mm}³ matmul, best of {reps}')

        self.guarded(dict(kind='ceiling', name='device copy bandwidth'), copy_row)
        self.guarded(dict(kind='ceiling', name='bf16 matmul rate'),
                     lambda row: mm_row(row, BF16, 'bf16'))
        self.guarded(dict(kind='ceiling', name='fp32 matmul rate (TF32 off)'),
                     lambda row: mm_row(row, torch.float32, 'fp32'))

    def correctness(self) -> None:
        cases = (('deblur', 1, 256, 256, '256²'), ('sr', 1, 64, 64, 'LR 64²'),
                 ('inpaint', 1, 256, 256, '256²'))
        for task, batch, h, w, label in cases:
            shape = self.shape(task, batch, h, w, label)
            why = self.affordable('correctness', self.guess('eager'))
            base = dict(kind='correctness', section='correctness', task=task, size=shape.label)
            if why:
                self.rec.add(dict(base, status='skipped', note=why))
                continue
            self.guarded(base, lambda row: self._correctness(shape, row))

    def _correctness(self, shape: Shape, row: Dict[str, Any]) -> None:
        nets = self.nets(shape.preset)
        ours, official = nets['ours'], nets['official']
        x, _ = self.inputs(shape)
        with torch_flags(tf32_matmul=False, tf32_conv=False):
            torch.manual_seed(7)  # the official eval forward draws x_T first, on the device RNG
            noise = torch.randn(shape.batch, IPR_DIM, device=self.device)
            fp32 = self.ours_fn(ours, ours.dirformer, 'fp32')(x, noise)
            if official is not None:
                torch.manual_seed(7)
                ref = self.official_fn(official)(x, noise)
                row['max_abs_diff_fp32'] = float((ref.double() - fp32.double()).abs().max())
            else:
                row['status'] = 'partial'
                row['note'] = nets['why']
            autocast = self.ours_fn(ours, ours.dirformer, 'bf16-autocast')(x, noise)
            row['rel_err_bf16_autocast'] = rel_err(autocast.float(), fp32)
            half = self.bf16_copy(ours)
            weights = self.ours_fn(half, half.dirformer, 'bf16-weights')(x.to(BF16),
                                                                         noise.to(BF16))
            row['rel_err_bf16_weights'] = rel_err(weights.float(), fp32)
            outs = [fp32, autocast, weights] + ([ref] if official is not None else [])
            row['finite'] = all(all_finite(o) for o in outs)

    # ---------------------------------------------------------------- forwards
    def ours_fn(self, net, dirformer, precision: str, check: bool = True,
                cache_enabled: bool = True) -> Callable[[torch.Tensor, torch.Tensor], Any]:
        """Our stage 2 as the Restorer runs it: prior in the weights' dtype with autocast off,
        the DIRformer (``dirformer``: eager or compiled) under ``precision``; NaN check."""
        device = self.device
        autocast = precision == 'bf16-autocast'

        def run(x: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
            with torch.inference_mode():
                with torch.autocast(device.type, enabled=False):
                    prior = net.estimate_prior(x, noise=noise)
                padded, (h, w) = pad_to_multiple(x, net.input_multiple)
                with torch.autocast(device.type, dtype=BF16, enabled=autocast,
                                    cache_enabled=cache_enabled):
                    out = dirformer(padded, prior)
                out = out[..., :h * net.scale, :w * net.scale]
            if check and not all_finite(out):
                raise FloatingPointError('non-finite output')
            return out
        return run

    @staticmethod
    def official_fn(official) -> Callable[[torch.Tensor, torch.Tensor], Any]:
        """The official network as users run it: ``torch.no_grad()``, fp32, no check."""
        def run(x: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
            with torch.no_grad():
                out = official(x)
            return out[0] if isinstance(out, tuple) else out
        return run

    def bf16_copy(self, ours):
        key = ('bf16', self._preset)
        if key not in self._nets:
            self._nets[key] = copy.deepcopy(ours).to(BF16)
        return self._nets[key]

    def compiled(self, ours, how: str):
        """A compiled copy of ``ours.dirformer`` (kept per preset: shapes recompile)."""
        key = ('compiled', how)
        if key in self._nets:
            return self._nets[key]
        raise_compile_limits()
        dirformer = copy.deepcopy(ours.dirformer)
        backend = self.args.compile_backend
        if how == 'compile-blocks':  # what the Restorer's compile option does
            compile_blocks(dirformer, backend=backend)
        elif how == 'compile':
            dirformer = torch.compile(dirformer, dynamic=False, backend=backend)
        elif how == 'compile-ro':
            dirformer = torch.compile(dirformer, dynamic=False, backend=backend,
                                      mode='reduce-overhead')
        else:
            raise ValueError(how)
        self._nets[key] = dirformer
        return dirformer

    def graphed(self, run: Callable, x: torch.Tensor, noise: torch.Tensor) -> Callable:
        """``run(x, noise)`` captured in a CUDA graph (warmed up on a side stream)."""
        static_x, static_noise = x.clone(), noise.clone()
        stream = torch.cuda.Stream(self.device)
        stream.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(stream):
            for _ in range(2):
                run(static_x, static_noise)
        torch.cuda.current_stream(self.device).wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            static_out = run(static_x, static_noise)

        def replay() -> torch.Tensor:
            graph.replay()
            if not all_finite(static_out):
                raise FloatingPointError('non-finite output')
            return static_out
        return replay

    # ---------------------------------------------------------------- inference rows
    def roofline(self, shape: Shape) -> Tuple[int, int]:
        """(MACs, bytes) of one forward of ``shape`` (see the module notes), on ``meta``."""
        if shape.key in self.work:
            return self.work[shape.key]
        with torch.device('meta'):
            net = build_diffir(shape.preset, 2, **self.overrides(shape.preset)).eval()
            x = torch.empty(shape.batch, shape.channels, shape.h, shape.w)
        values = 0

        def conv_io(module, inputs, out) -> None:
            nonlocal values
            values += inputs[0].numel() + out.numel() + module.weight.numel()

        def attention_io(module, inputs, out) -> None:
            nonlocal values
            values += 2 * inputs[0].numel()  # q and k read again for the scores

        def block_io(module, inputs, out) -> None:
            nonlocal values
            values += 2 * inputs[0].numel()  # the two residual reads

        handles = []
        for module in net.modules():
            if isinstance(module, torch.nn.Conv2d):
                handles.append(module.register_forward_hook(conv_io))
            elif isinstance(module, DynamicAttention):
                handles.append(module.register_forward_hook(attention_io))
            elif isinstance(module, DynamicTransformerBlock):
                handles.append(module.register_forward_hook(block_io))
        try:
            with torch.enable_grad():  # the reference path: every conv through its module
                macs = count_macs(net, lambda: net(x))
        finally:
            for h in handles:
                h.remove()
        self.work[shape.key] = (macs, 2 * values)
        return self.work[shape.key]

    def floor_row(self, shape: Shape, section: str) -> None:
        def body(row: Dict[str, Any]) -> None:
            macs, moved = self.roofline(shape)
            row.update(gmacs=macs / 1e9, gbytes=moved / 1e9)
            if 'bf16' in self.rates and 'bw' in self.rates:
                compute, memory = macs / self.rates['bf16'], moved / self.rates['bw']
                row.update(compute_floor_ms=compute * 1e3, memory_floor_ms=memory * 1e3,
                           floor_ms=max(compute, memory) * 1e3)
        self.guarded(dict(kind='floor', section=section, task=shape.task, size=shape.label,
                          batch=shape.batch), body)

    #: mode id -> (impl, precision, mode, runner kind for the budget guess, CUDA only)
    MODES = {
        'official': ('official', 'fp32', 'eager', 'eager', False),
        'fp32': ('ours', 'fp32', 'eager', 'eager', False),
        'fp32-tf32': ('ours', 'fp32, TF32 matmul', 'eager', 'eager', False),
        'bf16': ('ours', 'bf16-autocast', 'eager', 'eager', False),
        'bf16w': ('ours', 'bf16-weights', 'eager', 'eager', False),
        'bf16-cudnn': ('ours', 'bf16-autocast', 'eager, cudnn.benchmark', 'eager', False),
        'bf16-graph': ('ours', 'bf16-autocast', 'CUDA graph', 'eager', True),
        'bf16w-graph': ('ours', 'bf16-weights', 'CUDA graph', 'eager', True),
        'bf16-compile-blocks': ('ours', 'bf16-autocast', 'compile-blocks', 'compile-blocks',
                                False),
        'bf16-compile': ('ours', 'bf16-autocast', 'compile', 'compile', False),
        'bf16-compile-ro': ('ours', 'bf16-autocast', 'compile-ro', 'compile-ro', True),
        'restorer': ('restorer', 'default', 'Restorer.restore_tensor', 'eager', False),
    }

    def inference_row(self, shape: Shape, mode_id: str, section: str) -> Dict[str, Any]:
        impl, precision, mode, kind, cuda_only = self.MODES[mode_id]
        base = dict(kind='inference', section=section, task=shape.task, size=shape.label,
                    batch=shape.batch, impl=impl, precision=precision, mode=mode)
        if cuda_only and self.device.type != 'cuda':
            return self.rec.add(dict(base, status='skipped', note='needs CUDA'))
        if kind.startswith('compile') and self.args.no_compile:
            return self.rec.add(dict(base, status='skipped', note='--no-compile'))
        first = self.first_calls.get(('first', shape.key))
        cost = self.guess(kind) if kind != 'eager' or first is None \
            else first * (self.args.runs + self.args.warmup) + 1
        why = self.affordable(section, cost)
        if why:
            return self.rec.add(dict(base, status='skipped', note=why))

        def body(row: Dict[str, Any]) -> None:
            nets = self.nets(shape.preset)
            if impl == 'official' and nets['official'] is None:
                row.update(status='skipped', note=nets['why'])
                return
            fn, flags = self.make_runner(mode_id, nets, shape)
            counts = dynamo_counts()
            with flags:
                stats, _ = measure(fn, self.device, self.args.runs, self.args.warmup,
                                   max_s=max(1.0, min(10.0, self.budget.left() / 20)),
                                   min_total=self.min_total)
            breaks, graphs = (a - b for a, b in zip(dynamo_counts(), counts))
            row.update(stats, images_s=shape.batch / stats['median_s'])
            if kind.startswith('compile'):
                row['note'] = f'{graphs} graph(s) compiled, {breaks} graph break(s)'
                self.first_calls[kind] = stats['first_call_s'] * 1.2 + 5
            elif impl != 'restorer':
                self.first_calls[('first', shape.key)] = max(
                    stats['first_call_s'], self.first_calls.get(('first', shape.key), 0))
            if impl == 'official':
                self.official_s[shape.key] = stats['median_s']
            elif shape.key in self.official_s:
                row['speedup'] = self.official_s[shape.key] / stats['median_s']
            macs, moved = self.roofline(shape)
            if 'bf16' in self.rates and 'bw' in self.rates:
                floor = max(macs / self.rates['bf16'], moved / self.rates['bw'])
                row['x_floor'] = stats['median_s'] / floor
        return self.guarded(base, body)

    def make_runner(self, mode_id: str, nets: Dict[str, Any], shape: Shape
                    ) -> Tuple[Callable[[], Any], contextlib.AbstractContextManager]:
        """``(fn, flags)``: the timed call of ``mode_id`` and the flags it runs under."""
        ours = nets['ours']
        flags: contextlib.AbstractContextManager = contextlib.nullcontext()
        if mode_id == 'official':
            x, noise = self.inputs(shape)
            run = self.official_fn(nets['official'])
        elif mode_id in ('bf16w', 'bf16w-graph'):
            half = self.bf16_copy(ours)
            x, noise = self.inputs(shape, BF16)
            run = self.ours_fn(half, half.dirformer, 'bf16-weights',
                               check=not mode_id.endswith('graph'))  # no sync while capturing
        elif mode_id == 'restorer':
            return self.restorer_runner(ours, shape), flags
        else:
            x, noise = self.inputs(shape)
            precision = 'fp32' if mode_id.startswith('fp32') else 'bf16-autocast'
            dirformer = ours.dirformer
            if 'compile' in mode_id:
                dirformer = self.compiled(ours, mode_id.replace('bf16-', ''))
            run = self.ours_fn(ours, dirformer, precision,
                               check=not mode_id.endswith('graph'),  # no sync while capturing
                               cache_enabled=not mode_id.endswith('graph'))
            if mode_id == 'fp32-tf32':
                flags = torch_flags(tf32_matmul=True)
            elif mode_id == 'bf16-cudnn':
                flags = torch_flags(cudnn_benchmark=True)
        if mode_id.endswith('graph'):
            return self.graphed(run, x, noise), flags
        return (lambda: run(x, noise)), flags

    def restorer_runner(self, ours, shape: Shape) -> Callable[[], Any]:
        """``Restorer(net).restore_tensor`` with its defaults: CPU image in, CPU image out."""
        from diffir_mm.inference import Restorer
        restorer = Restorer(copy.deepcopy(ours), device=self.device)
        x, _ = self.inputs(shape)
        image = x[:, :3].cpu()
        mask = x[:, 3:].cpu() if shape.task == 'inpaint' else None
        self._restorer_info = restorer.describe()
        return lambda: restorer.restore_tensor(image, mask=mask, seed=0)

    # ---------------------------------------------------------------- sections 1 and 2
    def deblur_1024(self) -> None:
        section = 'deblur-1024'
        shape = self.shape('deblur', 1, 1024, 1024, '1024²')
        self.floor_row(shape, section)
        for mode_id in ('official', 'fp32', 'bf16', 'bf16-graph', 'bf16-compile-blocks',
                        'bf16w', 'bf16w-graph', 'fp32-tf32', 'bf16-cudnn', 'restorer',
                        'bf16-compile'):
            row = self.inference_row(shape, mode_id, section)
            if mode_id == 'restorer' and row['status'] == 'ok':
                row['note'] = getattr(self, '_restorer_info', '')
                self.rec.flush()

    def inference_shapes(self) -> List[Shape]:
        return [self.shape(*case)
                for case in (SMOKE_INFERENCE_CASES if self.smoke else INFERENCE_CASES)]

    def inference_sweep(self) -> None:
        """Section 2, the modes without compilation (smoke: the official and bf16 rows)."""
        modes = ('official', 'bf16') if self.smoke else ('official', 'fp32', 'bf16',
                                                         'bf16-graph', 'bf16w')
        for shape in self.inference_shapes():
            self.floor_row(shape, 'inference')
            for mode_id in modes:
                self.inference_row(shape, mode_id, 'inference')

    def inference_compiled(self) -> None:
        """Section 2, compiled: the faster compile mode of section 1, and compile + CUDA graphs
        for small inputs (launch-bound), while the budget lasts."""
        section = 'inference-compiled'
        best = self.best_compile()
        small = {(t, b, self.size(h), self.size(w)) for t, b, h, w in REDUCE_OVERHEAD_CASES}
        shapes = self.inference_shapes()
        for shape in shapes[:1] if self.smoke else shapes:
            self.inference_row(shape, best, section)
            if (shape.task, shape.batch, shape.h, shape.w) in small:
                self.inference_row(shape, 'bf16-compile-ro', section)

    def best_compile(self) -> str:
        """The faster compile mode of section 1 (per block when neither ran)."""
        rows = {r['mode']: r['median_s'] for r in self.rec.rows
                if r['kind'] == 'inference' and r.get('section') == 'deblur-1024'
                and r['status'] == 'ok' and r['mode'].startswith('compile')}
        if 'compile' in rows and rows['compile'] < rows.get('compile-blocks', math.inf):
            return 'bf16-compile'
        return 'bf16-compile-blocks'

    # ---------------------------------------------------------------- section 3
    def train_row(self, task: str, size: int, batch: int, with_cp: bool, section: str,
                  impl: str = 'ours', amp: bool = True) -> Dict[str, Any]:
        preset = PRESETS[task]
        h = self.size(size)
        label = f'{size}²' if h == size else f'{size}² (scaled: {h}²)'
        if task == 'sr':
            label = f'LR {label}'
        base = dict(kind='train', section=section, task=task, size=label, batch=batch,
                    impl=impl, precision='bf16 autocast' if amp else 'fp32', with_cp=with_cp)
        previous = self.first_calls.get(('train', task, size, with_cp, impl))
        # the previous (half) batch's step, doubled, times the first call + TRAIN_RUNS steps
        cost = self.guess('train') if previous is None else previous * 2 * (1 + TRAIN_RUNS) + 2
        why = self.affordable(section, cost)
        if why:
            return self.rec.add(dict(base, status='skipped', note=why))

        def body(row: Dict[str, Any]) -> None:
            self.release()  # the inference networks
            torch.manual_seed(0)
            if impl == 'official':
                if self.reference is None:
                    row.update(status='skipped', note='official reference not found')
                    return
                net = build_pair(preset, self.reference, **self.overrides(preset))[0]
            else:
                net = build_diffir(preset, 2, **self.overrides(preset, with_cp=with_cp))
            net = net.train().to(self.device)
            step = self.train_step(net, impl, task, batch, h, amp)
            stats, loss = measure(step, self.device, min(self.args.runs, TRAIN_RUNS), 1,
                                  max_s=max(1.0, min(10.0, self.budget.left() / 30)),
                                  min_total=self.min_total)
            if not torch.isfinite(loss):
                raise FloatingPointError('non-finite loss')
            self.first_calls[('train', task, size, with_cp, impl)] = stats['median_s']
            row.update(stats, images_s=batch / stats['median_s'])
            if 'peak_reserved_gib' in stats:
                row['fits_gib'] = [g for g in CARDS_GIB
                                   if stats['peak_reserved_gib'] + CONTEXT_GIB <= g]
        return self.guarded(base, body)

    def train_step(self, net, impl: str, task: str, batch: int, size: int,
                   amp: bool) -> Callable:
        """One stage-2 step: forward (teacher IPR given) + L1 losses + backward + Adam."""
        dev = self.device
        channels = 4 if task == 'inpaint' else 3
        scale = 4 if task == 'sr' else 1  # PRESETS['sr'] is x4
        gen = torch.Generator(device=dev).manual_seed(3)
        lq = torch.rand(batch, channels, size, size, device=dev, generator=gen)
        gt = torch.rand(batch, 3, size * scale, size * scale, device=dev, generator=gen)
        teacher = torch.randn(batch, IPR_DIM, device=dev, generator=gen)
        optimiser = torch.optim.Adam(net.parameters(), 1e-6)

        def step() -> torch.Tensor:
            optimiser.zero_grad(set_to_none=True)
            with torch.autocast(dev.type, dtype=BF16, enabled=amp):
                if impl == 'official':
                    image, steps = net(lq, teacher)
                else:
                    image, steps = net.forward_train(lq, teacher)
                loss = F.l1_loss(image.float(), gt) + F.l1_loss(steps[-1].float(), teacher)
            loss.backward()
            optimiser.step()
            return loss.detach()
        return step

    def train_goal(self) -> None:
        for with_cp in (False, True):
            self.train_row('deblur', 512, 1, with_cp, 'train-goal')

    def train_sweep(self) -> None:
        section = 'train'
        for task, size, batches, cps in SMOKE_TRAIN_SWEEP if self.smoke else TRAIN_SWEEP:
            for with_cp in cps:
                for batch in batches:
                    if task == 'deblur' and size == 512 and batch == 1:
                        continue  # measured in the goal section
                    row = self.train_row(task, size, batch, with_cp, section)
                    if row['status'] != 'ok':
                        break  # a larger batch needs more memory and time
            if task == 'deblur' and (size == 512 or self.smoke):
                # the official fp32 step beside ours (official issues #46, #58: OOM at 512²)
                self.train_row('deblur', 512, 1, False, section, impl='official', amp=False)
                self.train_row('deblur', 512, 1, False, section, amp=False)


# ---------------------------------------------------------------------------------- main


def environment(device: torch.device, args: argparse.Namespace, suite: Suite) -> Dict[str, Any]:
    import numpy
    env = dict(torch=torch.__version__, cuda=torch.version.cuda, python=platform.python_version(),
               numpy=numpy.__version__, cpus=os.cpu_count(), device=str(device),
               budget_s=args.budget_s, smoke=args.smoke, sizes_scale=args.sizes_scale,
               compile_backend=args.compile_backend,
               started=time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime()),
               official_reference=str(suite.reference) if suite.reference else None,
               flags_default=dict(zip(('float32_matmul_precision', 'cudnn_allow_tf32',
                                       'cudnn_benchmark'), _tf32_state())))
    if device.type == 'cuda':
        props = torch.cuda.get_device_properties(device)
        env.update(device=torch.cuda.get_device_name(device),
                   capability='.'.join(map(str, torch.cuda.get_device_capability(device))),
                   memory_gib=props.total_memory / 2 ** 30,
                   cudnn=torch.backends.cudnn.version())
    try:
        env['commit'] = subprocess.run(['git', 'rev-parse', 'HEAD'], cwd=ROOT, text=True,
                                       capture_output=True, timeout=10).stdout.strip()
    except Exception:  # noqa: BLE001 - no git on the machine: fine
        pass
    return env


def prepare(args: argparse.Namespace) -> int:
    """``--prepare``: copy the official code into ``.gpu_carry`` and print the sizes."""
    source = Path(args.reference) if args.reference else \
        shared_folder() / 'reference' / 'official_diffir'
    try:
        copied = prepare_carry(source)
    except FileNotFoundError as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    print(f'copied the official networks to {CARRY.relative_to(ROOT)} '
          f'({copied / 2 ** 10:.0f} KiB)')
    try:
        files = subprocess.run(['git', 'ls-files', '-z'], cwd=ROOT, capture_output=True,
                               check=True).stdout.split(b'\0')
        tracked = sum((ROOT / f.decode()).stat().st_size for f in files
                      if f and (ROOT / f.decode()).is_file())
        print(f'tracked files: {tracked / 2 ** 20:.1f} MiB; with the carry: '
              f'{(tracked + copied) / 2 ** 20:.1f} MiB (limit 64 MiB, untracked files travel '
              'too: check `git status --short`)')
    except (OSError, subprocess.CalledProcessError):
        print('git ls-files failed: measure the tree yourself (limit 64 MiB)')
    print(f'carry: ["{CARRY.parent.relative_to(ROOT)}"]')
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--out', default=os.environ.get('OUT') or 'gpu_suite_out',
                        help='folder of rows.jsonl, gpu_suite.md and env.json (default $OUT)')
    parser.add_argument('--budget-s', type=float, default=380.0,
                        help='wall-clock budget; no row starts that would not fit, and the run '
                             f'stops at budget + {GRACE_S} s whatever it is doing')
    parser.add_argument('--smoke', action='store_true',
                        help='tiny networks and sizes (runs on the CPU in well under a minute)')
    parser.add_argument('--sizes-scale', type=float, default=None,
                        help='scale every spatial size (multiples of 8); smoke: 1/32')
    parser.add_argument('--runs', type=int, default=5, help='at least this many timed runs')
    parser.add_argument('--warmup', type=int, default=2, help='untimed calls first')
    parser.add_argument('--compile-backend', default=None,
                        help="torch.compile backend (default inductor; smoke: 'eager')")
    parser.add_argument('--no-compile', action='store_true', help='skip the compiled rows')
    parser.add_argument('--sections', nargs='+', default=['all'],
                        choices=['all', 'ceilings', 'correctness', 'deblur-1024', 'train-goal',
                                 'inference', 'train', 'inference-compiled'])
    parser.add_argument('--reference', help='folder of the official code (see official_nets.py)')
    parser.add_argument('--prepare', action='store_true',
                        help='copy the official code (--reference, default the shared folder\'s) '
                             'into .gpu_carry/official_diffir for the GPU machine, and exit')
    args = parser.parse_args(argv)
    if args.prepare:
        return prepare(args)
    if args.sizes_scale is None:
        args.sizes_scale = 1 / 32 if args.smoke else 1.0
    if args.compile_backend is None:
        args.compile_backend = 'eager' if args.smoke else 'inductor'
    if args.smoke:
        args.runs, args.warmup = 1, 1
    if torch.cuda.is_available():
        device = torch.device('cuda')
    elif args.smoke or args.sizes_scale < 1:
        device = torch.device('cpu')
        if args.smoke:
            torch.set_num_threads(1)  # tiny networks: threads only contend on a shared CPU
    else:
        print('no CUDA device: nothing to measure (--smoke or --sizes-scale < 1 run on the CPU)')
        return 0

    budget = Budget(args.budget_s)
    rec = Recorder(Path(args.out), budget.start)
    suite = Suite(args, device, rec, budget)
    rec.write_env(environment(device, args, suite))
    print(f"{rec.env['device']}, torch {torch.__version__}, official code: "
          f"{suite.reference or 'not found'}, budget {args.budget_s:.0f} s", flush=True)

    def alarm(signum, frame):
        raise HardDeadline()

    if hasattr(signal, 'SIGALRM'):
        signal.signal(signal.SIGALRM, alarm)
        signal.alarm(int(args.budget_s + GRACE_S))
    steps = (('ceilings', suite.ceilings), ('correctness', suite.correctness),
             ('deblur-1024', suite.deblur_1024), ('train-goal', suite.train_goal),
             ('inference', suite.inference_sweep), ('train', suite.train_sweep),
             ('inference-compiled', suite.inference_compiled))
    try:
        for name, run in steps:
            if 'all' in args.sections or name in args.sections:
                run()
    except HardDeadline:
        rec.add(dict(kind='note', status='deadline',
                     note=f'stopped at the hard deadline ({args.budget_s + GRACE_S:.0f} s)'))
    finally:
        if hasattr(signal, 'SIGALRM'):
            signal.alarm(0)
    rec.flush()
    print('\n' + (rec.out / 'gpu_suite.md').read_text(), flush=True)
    print(f'done in {budget.elapsed():.0f} s; rows in {rec.out}', flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
