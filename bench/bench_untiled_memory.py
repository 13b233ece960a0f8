"""Does the untiled-memory estimate hold? Measured peak of real restorations against it.

The web app refuses an image that would not fit untiled and suggests a tile size
(``diffir_mm/app/service.py``), from :func:`diffir_mm.inference.memory.untiled_peak_bytes`: the
tensor bytes traced on a 64 x 64 probe, scaled to the image, times ``MARGIN`` (1.5) for what the
trace does not see. The margin was set from one measurement (the deblurring preset at 256^2).
This benchmark measures it over presets and sizes.

Each row is one fresh process (so its peak resident set, ``VmHWM``, is its own). It builds the
released architecture with random weights, traces the per-pixel estimate, reads the resident
set (``VmRSS``), restores one random image untiled through
:class:`~diffir_mm.inference.Restorer` (fp32 on the CPU, as the app runs it), and reads the peak
(``VmHWM``). The difference is what the restoration needed beyond what the process held.
``ratio`` is that over the traced bytes, and the margin holds where ``ratio <= MARGIN``. The
process exits 1 when a row exceeds it.

Usage::

    python bench/bench_untiled_memory.py --json untiled_memory.json
    python bench/bench_untiled_memory.py --rows deblur:256,sr_x4:128 --threads 2
    python bench/bench_untiled_memory.py --smoke          # tiny networks, seconds
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Dict, List

ROOT = Path(__file__).resolve().parents[1]
#: The rows of a full run: ``preset:side`` (input side in pixels).
DEFAULT_ROWS = ('deblur:256', 'deblur:512', 'deblur:768', 'sr_x4:128', 'sr_x4:256',
                'sr_x2:256', 'inpaint:256', 'inpaint:512')
SMOKE_ROWS = ('deblur:96', 'deblur:160', 'sr_x4:64', 'inpaint:96')
#: Arguments of the tiny networks of ``--smoke`` (official constructor names).
TINY = dict(dim=8, num_blocks=[1, 1, 1, 1], num_refinement_blocks=1, heads=[1, 1, 1, 1])


def child(preset: str, side: int, smoke: bool) -> Dict:
    """One row, measured in this (fresh) process."""
    import numpy as np
    import torch

    from diffir_mm.archs import build_diffir
    from diffir_mm.inference import Restorer
    from diffir_mm.inference.memory import MARGIN, untiled_peak_bytes
    from diffir_mm.utils.host_memory import peak_resident_bytes, resident_bytes

    torch.manual_seed(0)
    tiny = dict(TINY, num_refinement_blocks=0) if preset.startswith('inpaint') else TINY
    network = build_diffir(preset, 2, **(tiny if smoke else {})).eval()
    restorer = Restorer(network, device='cpu', precision='fp32', tile=0, compile=False)
    traced = untiled_peak_bytes(network, side, side) / MARGIN  # the estimate without the margin
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
    mask = None
    if restorer.task == 'inpaint':  # a quarter of the pixels are holes
        mask = (rng.random((side, side)) < 0.25).astype(np.uint8)
    before = resident_bytes()
    if before is None:
        raise SystemExit('this benchmark reads /proc/self/status (Linux only)')
    out = restorer.restore(image, mask=mask, seed=0)
    measured = peak_resident_bytes() - before
    return dict(preset=preset, side=side, output=list(out.shape[:2]),
                traced_mb=round(traced / 2 ** 20, 1), measured_mb=round(measured / 2 ** 20, 1),
                ratio=round(measured / traced, 3), margin=MARGIN,
                holds=measured <= traced * MARGIN, threads=torch.get_num_threads())


def main(argv: List[str] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--rows', help='comma-separated preset:side (default: a full run)')
    parser.add_argument('--smoke', action='store_true', help='tiny networks, small images')
    parser.add_argument('--threads', type=int, default=2, help='torch threads per row')
    parser.add_argument('--json', help='write the rows here (atomically)')
    parser.add_argument('--child', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        preset, side = args.child.split(':')
        print(json.dumps(child(preset, int(side), args.smoke)))
        return 0
    rows = args.rows.split(',') if args.rows else list(SMOKE_ROWS if args.smoke else
                                                       DEFAULT_ROWS)
    sys.path.insert(0, str(ROOT))
    from diffir_mm.archs.presets import PRESETS
    for row in rows:
        preset, _, side = row.partition(':')
        if preset not in PRESETS or not side.isdigit() or int(side) < 16:
            parser.error(f'bad row {row!r}: want preset:side with a preset of '
                         f'{", ".join(sorted(PRESETS))} and a side of 16 or more')
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), PYTHONPATH=str(ROOT))
    results = []
    print(f'{"row":<12} {"traced MB":>10} {"measured MB":>12} {"ratio":>6}  margin holds')
    for row in rows:
        cmd = [sys.executable, __file__, '--child', row] + (['--smoke'] if args.smoke else [])
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
        if proc.returncode:
            raise SystemExit(f'{row} failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}')
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        results.append(result)
        print(f'{row:<12} {result["traced_mb"]:>10} {result["measured_mb"]:>12} '
              f'{result["ratio"]:>6}  {result["holds"]}', flush=True)
    if args.json:
        from diffir_mm.utils.atomic import write_bytes_atomic
        write_bytes_atomic(args.json, json.dumps(results, indent=1).encode('utf-8'))
    return 0 if all(r['holds'] for r in results) else 1


if __name__ == '__main__':
    sys.exit(main())
