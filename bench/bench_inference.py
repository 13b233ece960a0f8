#!/usr/bin/env python
"""Inference benchmark: peak memory / time of tiled 4K deblurring, bf16 vs fp32, tiled vs untiled.

Three parts, each measured in its own subprocess (peak RSS = ``resource.getrusage`` of that
process, ``ru_maxrss``):

1. **memory** -- a 3840x2160 image restored by the full released ``deblur`` preset (26.9 M
   params, random weights) through :class:`diffir_mm.inference.Restorer` with tiles and one
   global prior, then converted and written as a PNG exactly as ``diffir-restore`` does. On a
   slow CPU a full 4K run takes about an hour, so by default only ``--max-tiles`` tiles run the
   network; the others return zeros of the right shape (every buffer of the real run -- input,
   prior pass, accumulator, weights, output conversion -- is still allocated, so the peak RSS is
   that of the full run) and the total time is extrapolated from the measured per-tile time.
   ``--max-tiles 0`` runs every tile for real. Target: peak RSS < 6 GB.
2. **precision** -- DIRformer forward time in fp32 vs bf16 (autocast) on the CPU for one
   ``--precision-size`` image, full deblur preset, and the max abs difference between the two.
3. **tiling** -- how close tiled output is to untiled output on a real photo
   (``skimage.data.astronaut()`` resized to ``--photo-size``) with a random-init mid-size deblur
   model; max / mean abs difference and PSNR (outputs clipped to [0, 1]) for several tile sizes,
   plus two references: tiles that each estimate their *own* prior (what sharing one global prior
   avoids) and the untiled result with the prior taken from a downscaled image (the
   ``prior_max_side`` rule).

Usage::

    python bench/bench_inference.py            # default run (~10 min on 2 slow cores)
    python bench/bench_inference.py --quick    # reduced run (~3 min)
    python bench/bench_inference.py --device cuda --max-tiles 0   # full 4K on a GPU (untested)
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


def _rss_gb() -> float:
    """Peak RSS of this process so far (Linux ru_maxrss is in KiB)."""
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if sys.platform == 'darwin':  # bytes there
        kb /= 1024
    return kb * 1024 / 1e9


def _photo(height: int, width: int):
    """``skimage.data.astronaut()`` resized (bicubic) to height x width, float32 RGB [0, 1]."""
    import cv2
    import numpy as np
    try:
        from skimage import data
        img = data.astronaut()
    except Exception:  # pragma: no cover - skimage sample missing: a smooth synthetic image
        yy, xx = np.mgrid[0:512, 0:512] / 512.0
        img = (np.stack([np.sin(9 * xx), np.cos(7 * yy), xx * yy], -1) * 127 + 128).astype('uint8')
    img = cv2.resize(img, (width, height), interpolation=cv2.INTER_CUBIC)
    return np.clip(img.astype(np.float32) / 255.0, 0, 1)


# ------------------------------------------------------------------------------------ children
def child_memory(args) -> dict:
    import torch

    import diffir_mm.inference  # noqa: F401  (torch-only import first)
    from diffir_mm.archs import build_diffir
    from diffir_mm.inference import Restorer, write_image
    from diffir_mm.inference.io import ImageRecord
    from diffir_mm.inference.tiling import tile_windows

    torch.manual_seed(0)
    t_start = time.perf_counter()
    net = build_diffir('deblur', stage=2).eval()
    rss_model = _rss_gb()
    h, w = args.height, args.width
    img = _photo(h, w)
    multiple = net.input_multiple
    hp, wp = -(-h // multiple) * multiple, -(-w // multiple) * multiple
    tile = -(-args.tile // multiple) * multiple
    n_tiles = len(tile_windows(hp, wp, tile, args.overlap, multiple))
    n_batches = -(-n_tiles // args.tile_batch)
    real_batches = n_batches if args.max_tiles <= 0 else min(n_batches, max(1, -(
        -args.max_tiles // args.tile_batch)))
    timings = {'tile': [], 'prior': 0.0}

    class Budgeted(torch.nn.Module):
        """Runs the real network for the first batches, zeros afterwards (same shapes)."""

        def __init__(self, inner):
            super().__init__()
            self.inner = inner
            self.task, self.scale = inner.task, inner.scale
            self.input_multiple, self.lq_unshuffle = inner.input_multiple, inner.lq_unshuffle
            self.calls = 0

        def estimate_prior(self, *a, **k):
            t = time.perf_counter()
            out = self.inner.estimate_prior(*a, **k)
            timings['prior'] += time.perf_counter() - t
            timings['rss_prior'] = _rss_gb()
            return out

        def restore(self, x, prior):
            self.calls += 1
            if self.calls > real_batches:
                s = self.scale
                return x.new_zeros(x.shape[0], 3, x.shape[2] * s, x.shape[3] * s)
            t = time.perf_counter()
            out = self.inner.restore(x, prior)
            timings['tile'].append(time.perf_counter() - t)
            timings['rss_tile'] = _rss_gb()
            return out

    restorer = Restorer(Budgeted(net), device=args.device, precision=args.precision,
                        tile=args.tile, tile_overlap=args.overlap, tile_batch=args.tile_batch,
                        seed=0)
    t0 = time.perf_counter()
    out = restorer.restore(img)
    t_restore = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        t1 = time.perf_counter()
        write_image(os.path.join(tmp, 'out.png'), out, ImageRecord(rgb=img))
        t_write = time.perf_counter() - t1
    del out
    per_batch = sum(timings['tile']) / max(1, len(timings['tile']))
    overhead = t_restore - sum(timings['tile']) - timings['prior']
    est_total = timings['prior'] + per_batch * n_batches + max(0.0, overhead) + t_write
    return dict(size=f'{w}x{h}', tile=tile, overlap=args.overlap, tile_batch=args.tile_batch,
                precision=args.precision, device=str(restorer.device), n_tiles=n_tiles,
                real_tiles=min(n_tiles, real_batches * args.tile_batch),
                prior_s=timings['prior'], per_tile_s=per_batch / args.tile_batch,
                other_s=max(0.0, overhead) + t_write, measured_s=t_restore + t_write,
                est_total_s=est_total, rss_model_gb=rss_model,
                rss_prior_gb=timings.get('rss_prior', 0.0),
                rss_tile_gb=timings.get('rss_tile', 0.0),
                peak_rss_gb=_rss_gb(), load=os.getloadavg()[0],
                setup_s=t0 - t_start, threads=torch.get_num_threads())


def child_precision(args) -> dict:
    import torch

    import diffir_mm.inference  # noqa: F401
    from diffir_mm.archs import build_diffir
    from diffir_mm.inference.precision import run_with_precision

    torch.manual_seed(0)
    net = build_diffir('deblur', stage=2).eval().to(args.device)
    s = args.precision_size
    x = torch.from_numpy(_photo(s, s)).permute(2, 0, 1)[None].to(args.device)
    res = {}
    outs = {}
    with torch.inference_mode():
        prior = net.estimate_prior(x, generator=torch.Generator().manual_seed(0))
        for prec in args.precisions:
            run_with_precision(net.restore, x, prior, precision=prec)  # warm-up
            times = []
            for _ in range(args.repeats):
                if x.is_cuda:
                    torch.cuda.synchronize()
                t = time.perf_counter()
                outs[prec] = run_with_precision(net.restore, x, prior, precision=prec)
                if x.is_cuda:
                    torch.cuda.synchronize()
                times.append(time.perf_counter() - t)
            res[prec] = min(times)
    diffs = {p: float((outs[p] - outs['fp32']).abs().max()) for p in outs if p != 'fp32'}
    return dict(size=f'{s}x{s}', device=args.device, times=res, max_abs_vs_fp32=diffs,
                threads=torch.get_num_threads(), peak_rss_gb=_rss_gb())


def child_tiling(args) -> dict:
    import numpy as np
    import torch

    import diffir_mm.inference  # noqa: F401
    from diffir_mm.archs import build_diffir
    from diffir_mm.inference import restore_tiled

    torch.manual_seed(0)
    net = build_diffir('deblur', stage=2, dim=24, num_blocks=[2, 2, 3, 4],
                       num_refinement_blocks=2, n_encoder_res=3).eval().to(args.device)
    n_params = sum(p.numel() for p in net.parameters())
    s = args.photo_size
    x = torch.from_numpy(_photo(s, s)).permute(2, 0, 1)[None].to(args.device)
    noise = torch.randn(1, 256, generator=torch.Generator().manual_seed(0)).to(args.device)

    def metrics(a, b):
        a, b = a.clamp(0, 1), b.clamp(0, 1)
        d = (a - b).abs()
        mse = float((d ** 2).mean())
        psnr = float('inf') if mse == 0 else 10 * np.log10(1.0 / mse)
        return dict(max_abs=float(d.max()), mean_abs=float(d.mean()), psnr=psnr)

    class PerTilePrior(torch.nn.Module):
        """Each tile estimates its own prior from its own pixels (what the global prior avoids)."""

        def __init__(self, inner):
            super().__init__()
            self.inner = inner
            self.task, self.scale = inner.task, inner.scale
            self.input_multiple, self.lq_unshuffle = inner.input_multiple, inner.lq_unshuffle
            self.rel = []

        def estimate_prior(self, *a, **k):
            return self.inner.estimate_prior(*a, **k)

        def restore(self, tile, prior):
            own = self.inner.estimate_prior(tile, noise=noise.expand(tile.shape[0], -1))
            self.rel.extend(((own - prior).norm(dim=1) / prior.norm(dim=1)).tolist())
            return self.inner.restore(tile, own)

    rows = []
    with torch.inference_mode():
        t = time.perf_counter()
        ref = restore_tiled(net, x, noise=noise)
        t_ref = time.perf_counter() - t
        for tile, overlap in args.tiles:
            t = time.perf_counter()
            out = restore_tiled(net, x, noise=noise, tile=tile, tile_overlap=overlap)
            rows.append(dict(case=f'tiles {tile}/{overlap}, shared global prior',
                             seconds=time.perf_counter() - t, **metrics(out, ref)))
        tile, overlap = args.tiles[-1]
        global_prior = net.estimate_prior(x, noise=noise)
        per_tile = PerTilePrior(net)
        out = restore_tiled(per_tile, x, prior=global_prior, tile=tile, tile_overlap=overlap)
        rows.append(dict(case=f'tiles {tile}/{overlap}, prior per tile (not used)', seconds=0.0,
                         prior_rel=max(per_tile.rel), **metrics(out, ref)))
        side = max(8, s // 4 // 2)  # halve the CPEN grid: prior from a 2x downscaled image
        small_prior = net.estimate_prior(
            diffir_mm.inference.prior_input(net, x, side), noise=noise)
        out = restore_tiled(net, x, prior=small_prior)
        rows.append(dict(case=f'untiled, prior from {s // 2}px downscale', seconds=0.0,
                         prior_rel=float((small_prior - global_prior).norm()
                                         / global_prior.norm()), **metrics(out, ref)))
    return dict(size=f'{s}x{s}', params=n_params, untiled_s=t_ref, rows=rows,
                peak_rss_gb=_rss_gb())


CHILDREN = {'memory': child_memory, 'precision': child_precision, 'tiling': child_tiling}


# ------------------------------------------------------------------------------------- parent
def _run_child(part: str, argv) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), '--child', part, *argv]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-5:]
        raise RuntimeError(f'{part} failed (exit {proc.returncode}): ' + ' | '.join(tail))
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _table(headers, rows) -> str:
    cells = [[str(c) for c in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    line = '  '.join(h.ljust(widths[i]) for i, h in enumerate(headers))
    out = [line, '  '.join('-' * w for w in widths)]
    out += ['  '.join(c.ljust(widths[i]) for i, c in enumerate(r)) for r in cells]
    return '\n'.join(out)


def _parse_tiles(text: str):
    pairs = []
    for part in text.split(','):
        tile, _, overlap = part.partition('/')
        pairs.append((int(tile), int(overlap or 32)))
    return pairs


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--quick', action='store_true', help='reduced run')
    p.add_argument('--parts', default='memory,precision,tiling')
    p.add_argument('--device', default='cpu')
    p.add_argument('--threads', type=int, default=0, help='torch CPU threads (0 = default)')
    p.add_argument('--width', type=int, default=3840)
    p.add_argument('--height', type=int, default=2160)
    p.add_argument('--tile', type=int, default=None,
                   help='memory run tile (default 512; quick 256)')
    p.add_argument('--overlap', type=int, default=32)
    p.add_argument('--tile-batch', type=int, default=1)
    p.add_argument('--precision', default='fp32', help='precision of the memory run')
    p.add_argument('--max-tiles', type=int, default=None,
                   help='tiles run for real in the memory part (0 = all; default 2, quick 1)')
    p.add_argument('--precision-size', type=int, default=None, help='default 256 (quick 128)')
    p.add_argument('--precisions', default='fp32,bf16')
    p.add_argument('--repeats', type=int, default=None, help='default 2')
    p.add_argument('--photo-size', type=int, default=None, help='default 768 (quick 384)')
    p.add_argument('--tiles', default=None,
                   help='tiling part: tile/overlap list (default 128/16,256/32,256/64)')
    p.add_argument('--child', choices=sorted(CHILDREN), help=argparse.SUPPRESS)
    p.add_argument('--json', action='store_true', help='print the raw results as JSON too')
    return p


def _defaults(args) -> None:
    q = args.quick
    args.tile = args.tile or (256 if q else 512)
    args.max_tiles = args.max_tiles if args.max_tiles is not None else (1 if q else 2)
    args.precision_size = args.precision_size or (128 if q else 256)
    args.repeats = args.repeats or 2
    args.photo_size = args.photo_size or (384 if q else 768)
    args.tiles = _parse_tiles(args.tiles or ('128/16,192/32' if q else '128/16,256/32,256/64'))
    args.precisions = [p.strip() for p in args.precisions.split(',')]
    if 'fp32' not in args.precisions:
        args.precisions.insert(0, 'fp32')


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.child:
        _defaults(args)
        if args.threads > 0:
            import torch
            torch.set_num_threads(args.threads)
        print(json.dumps(CHILDREN[args.child](args)))
        return 0
    raw_argv = list(sys.argv[1:] if argv is None else argv)
    _defaults(args)
    parts = [p.strip() for p in args.parts.split(',') if p.strip()]
    results = {}
    t0 = time.perf_counter()
    for part in parts:
        print(f'[bench] running {part} ...', file=sys.stderr, flush=True)
        try:
            results[part] = _run_child(part, raw_argv)
        except Exception as err:  # noqa: BLE001
            print(f'[bench] {err}', file=sys.stderr)
            results[part] = {'error': str(err)}
    print()
    m = results.get('memory')
    if m and 'error' not in m:
        print(f"1) {m['size']} deblurring, full 'deblur' preset, {m['device']}, "
              f"{m['precision']}, {m['threads']} threads, tiles {m['tile']}/{m['overlap']} "
              f"x{m['tile_batch']} (1-min load average at the end: {m['load']:.1f})")
        rows = [
            ('tiles (run for real)', f"{m['n_tiles']} ({m['real_tiles']})"),
            ('global prior (CPEN+diffusion)', f"{m['prior_s']:.1f} s"),
            ('per tile', f"{m['per_tile_s']:.1f} s"),
            ('blending, conversion, PNG write', f"{m['other_s']:.1f} s"),
            ('wall time measured', f"{m['measured_s']:.1f} s"),
            ('wall time, all tiles (est.)' if m['real_tiles'] < m['n_tiles']
             else 'wall time, all tiles', f"{m['est_total_s']:.0f} s"),
            ('RSS after model build', f"{m['rss_model_gb']:.2f} GB"),
            ('peak RSS after the prior pass', f"{m['rss_prior_gb']:.2f} GB"),
            ('peak RSS after the real tiles', f"{m['rss_tile_gb']:.2f} GB"),
            ('peak RSS (getrusage)', f"{m['peak_rss_gb']:.2f} GB  (target < 6 GB: "
                                     f"{'OK' if m['peak_rss_gb'] < 6 else 'EXCEEDED'})"),
        ]
        print(_table(['quantity', 'value'], rows))
        print()
    pr = results.get('precision')
    if pr and 'error' not in pr:
        base = pr['times']['fp32']
        print(f"2) DIRformer forward, {pr['size']}, full 'deblur' preset, {pr['device']}, "
              f"{pr['threads']} threads (best of repeats)")
        rows = [(p, f'{t:.2f} s', f'{base / t:.2f}x',
                 f"{pr['max_abs_vs_fp32'].get(p, 0.0):.2e}") for p, t in pr['times'].items()]
        print(_table(['precision', 'time', 'speed-up vs fp32', 'max |out - fp32|'], rows))
        print()
    tl = results.get('tiling')
    if tl and 'error' not in tl:
        print(f"3) tiled vs untiled, astronaut {tl['size']}, random-init deblur model "
              f"({tl['params'] / 1e6:.2f} M params); untiled {tl['untiled_s']:.1f} s")
        rows = [(r['case'], f"{r['max_abs']:.2e}", f"{r['mean_abs']:.2e}",
                 f"{r['psnr']:.1f} dB",
                 f"{r['prior_rel']:.1e}" if 'prior_rel' in r else '0 (shared)')
                for r in tl['rows']]
        print(_table(['vs untiled', 'max abs', 'mean abs', 'PSNR',
                      '|z - z_global| / |z_global|'], rows))
        print()
    for part, r in results.items():
        if 'error' in r:
            print(f'{part}: FAILED: {r["error"]}')
    print(f'total bench time {time.perf_counter() - t0:.0f} s')
    if args.json:
        print(json.dumps(results, indent=1))
    return 1 if any('error' in r for r in results.values()) else 0


if __name__ == '__main__':
    sys.exit(main())
