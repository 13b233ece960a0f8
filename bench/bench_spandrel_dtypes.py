"""fp16 / bf16 of the spandrel descriptors: error against fp32, and time, per released network.

What ``diffir_mm.spandrel`` declares (``SUPPORTS_HALF``, ``SUPPORTS_BFLOAT16``) is what a host
gets after ``descriptor.half()`` / ``.bfloat16()``: the whole network cast to that dtype (layer
norms and attention scores still in fp32 inside). This measures it on the full released
architectures (random weights, seeded) through the descriptor call itself::

    .venv/bin/python bench/bench_spandrel_dtypes.py                       # CPU, small inputs
    .venv/bin/python bench/bench_spandrel_dtypes.py --device cuda --size 256 --json dtypes.json

Rows: preset, dtype, relative error ``|a - b| / |b|`` against fp32 (Frobenius norms), whether
every output value is finite, and the seconds of one call (after one warm-up call) with the ratio
to fp32 in the same run. ``tests/test_spandrel/test_spandrel.py`` checks the tolerances on the
CPU.
"""
from __future__ import annotations

import argparse
import json
import os.path as osp
import sys
import time
from typing import Dict, List

import torch

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from diffir_mm.archs import build_diffir  # noqa: E402
from diffir_mm.spandrel import DiffIRArch  # noqa: E402
from diffir_mm.utils.atomic import write_bytes_atomic  # noqa: E402

PRESETS = ('deblur', 'sr_x4', 'sr_x2', 'sr_x1', 'inpaint', 'inpaint_big')
DTYPES = {'fp32': torch.float32, 'fp16': torch.float16, 'bf16': torch.bfloat16}


def _sync(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def measure(preset: str, size: int, device: torch.device) -> List[Dict]:
    """One row per dtype for ``preset`` (input side ``size``; SR: the LR side is size / 4)."""
    torch.manual_seed(0)
    net = build_diffir(preset, 2)
    model = DiffIRArch().load(net.state_dict()).to(device)
    side = max(8, size // 4) if preset.startswith('sr') else size
    gen = torch.Generator().manual_seed(1)
    image = torch.rand(1, 3, side, side, generator=gen).to(device)
    mask = (torch.rand(1, 1, side, side, generator=gen) > 0.5).float().to(device)
    rows, reference, fp32_seconds = [], None, None
    for name, dtype in DTYPES.items():
        model.to(dtype)
        args = (image.to(dtype),) + ((mask.to(dtype),) if preset.startswith('inpaint') else ())
        model(*args)  # warm-up
        _sync(device)
        start = time.perf_counter()
        out = model(*args).float()
        _sync(device)
        seconds = time.perf_counter() - start
        if reference is None:
            reference, fp32_seconds = out, seconds
        rows.append(dict(preset=preset, dtype=name, device=str(device), input=side,
                         rel_error=float((out - reference).double().norm()
                                         / reference.double().norm()),
                         finite=bool(torch.isfinite(out).all()), seconds=round(seconds, 4),
                         vs_fp32=round(seconds / fp32_seconds, 3)))
        print(json.dumps(rows[-1]), flush=True)
    return rows


def main(argv: List[str] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--size', type=int, default=16,
                        help='input side (SR: 4x the LR side); the paper sizes are 256')
    parser.add_argument('--presets', nargs='+', default=list(PRESETS), choices=PRESETS)
    parser.add_argument('--threads', type=int, default=1,
                        help='CPU threads (0: torch default; one is steadiest on a shared CPU)')
    parser.add_argument('--json', help='write the rows here')
    args = parser.parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    rows = [row for preset in args.presets for row in measure(preset, args.size, device)]
    if args.json:
        write_bytes_atomic(args.json, json.dumps(rows, indent=1).encode('utf-8'))
    return 0


if __name__ == '__main__':
    sys.exit(main())
