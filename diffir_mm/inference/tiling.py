"""Tiled DiffIR restoration in which every tile shares one global IR prior.

DiffIR's IPR is a *global* vector: CPEN ends with a global average pool
(``docs/advanced_guides/method.md`` §2.4), and the same 256-d ``z`` modulates every block.
Estimating it per tile would give every tile its own prior (and its own diffusion noise), which
shows up as seams and colour shifts. Here the prior is estimated **once from the whole image** and
shared by all tiles; only the DIRformer is tiled.

Prior rule (:func:`prior_input`)
    The prior is computed from the whole degraded image *as the network receives it* -- the LR
    image for SR, ``cat(masked image, mask)`` for inpainting -- so an untiled run is the official
    inference exactly. CPEN works on the task's pixel-unshuffled grid (deblur / inpainting /
    SR x1: 1/4 of the input side, SR x2: 1/2, SR x4: the LR image itself), and its widest map has
    256 channels on that grid (about 0.5 GB for 1024 x 540). A budget ``prior_max_side`` bounds
    that memory: if the longest side of the CPEN grid exceeds it, the input is first resized so
    that the grid's longest side becomes ``prior_max_side`` (both sides rounded to multiples of
    ``net.input_multiple``, so CPEN sees the same pixel-unshuffle geometry; image channels area
    averaged; for inpainting the mask resized with nearest neighbour and the image averaged over
    known pixels only, so holes stay exactly zero). This changes the prior, so it is never done
    unless asked for: :func:`restore_tiled` applies :data:`DEFAULT_PRIOR_MAX_SIDE` (1024, i.e.
    inputs up to 4096 px for deblurring, inpainting and SR x1, LR up to 2048 px for SR x2 and
    1024 px for SR x4) only to runs cut into several tiles -- the runs made for images too large
    for memory -- unless ``prior_max_side`` is given (0: never). A run whose single window covers
    the image is the untiled forward, bitwise equal to ``net(lq, noise)``.

Tiles (:func:`restore_tiled`)
    The input is reflect-padded to ``net.input_multiple`` exactly as the network pads it, then
    cut into ``tile`` x ``tile`` windows (``tile`` rounded up to that multiple) whose starts are
    multiples of it, overlapping by at least ``tile_overlap`` input pixels. Every window is thus a
    sub-window of what the untiled network sees, with the same down-sampling phase. Windows are run
    ``tile_batch`` at a time, and blended in the output space (SR: coordinates and overlaps
    multiplied by the scale) with linear ramps across each overlap (complementary ramps sum to 1;
    the accumulated weights are normalised). A single window covering the image is the untiled
    forward itself. Peak memory is one tile batch plus the fp32 output accumulator (3 x H·s x W·s)
    and a one-channel weight map.
"""
from __future__ import annotations

import math
from typing import Callable, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F

from diffir_mm.archs import pad_to_multiple

from .precision import resolve_precision, run_with_precision

__all__ = ['DEFAULT_PRIOR_MAX_SIDE', 'DEFAULT_TILE_OVERLAP', 'prior_input',
           'estimate_global_prior', 'tile_starts', 'tile_windows', 'restore_tiled']

#: Budget of tiled runs: longest side of CPEN's input grid above which the prior input is
#: downscaled (untiled runs are never downscaled unless a budget is given).
DEFAULT_PRIOR_MAX_SIDE = 1024
#: Default overlap between neighbouring tiles (input pixels).
DEFAULT_TILE_OVERLAP = 32

ProgressFn = Callable[[int, int], None]


def _cpen_unshuffle(net) -> int:
    """How much the task's prior arrangement shrinks the input side (CPEN grid = input / this)."""
    unshuffle = getattr(net, 'lq_unshuffle', None)
    if unshuffle is not None:
        return int(unshuffle)
    if getattr(net, 'task', None) == 'sr':
        return 4 // int(getattr(net, 'scale', 4))
    return 4


def _round_to(value: float, multiple: int) -> int:
    return max(multiple, int(round(value / multiple)) * multiple)


def prior_input(net, lq: torch.Tensor, max_side: Optional[int] = None) -> torch.Tensor:
    """The image the global prior is estimated from (``lq`` itself unless over the budget).

    Args:
        net: A stage-2 DiffIR network (``DiffIRS2Net`` or anything with the same attributes).
        lq: Network input (B, C, H, W): the degraded image, the LR image for SR, or
            ``cat(image * (1 - mask), mask)`` for inpainting.
        max_side: Budget on the longest side of CPEN's grid (input side / pixel-unshuffle factor);
            ``None`` or ``0`` disables downscaling.
    """
    if not max_side or max_side <= 0:
        return lq
    h, w = lq.shape[-2:]
    unshuffle = _cpen_unshuffle(net)
    longest = max(h, w) / unshuffle
    if longest <= max_side:
        return lq
    multiple = int(getattr(net, 'input_multiple', unshuffle))
    factor = max_side / longest
    size = (_round_to(h * factor, multiple), _round_to(w * factor, multiple))
    if getattr(net, 'task', None) == 'inpaint' and lq.shape[1] >= 2:
        image, mask = lq[:, :-1], lq[:, -1:]
        known = 1.0 - mask
        # mean over the known pixels of each area cell; holes are re-zeroed by the nearest mask
        num = F.interpolate(image * known, size=size, mode='area')
        den = F.interpolate(known, size=size, mode='area')
        small_mask = F.interpolate(mask, size=size, mode='nearest-exact')
        small = torch.where(den > 1e-6, num / den.clamp_min(1e-6), torch.zeros_like(num))
        return torch.cat([small * (1.0 - small_mask), small_mask], dim=1)
    return F.interpolate(lq, size=size, mode='area')


def estimate_global_prior(net, lq: torch.Tensor, noise: Optional[torch.Tensor] = None,
                          generator: Optional[torch.Generator] = None,
                          max_side: Optional[int] = None) -> torch.Tensor:
    """Estimate one IPR per image of ``lq`` from the whole image (see the module notes).

    Always runs in fp32 (autocast disabled), whatever precision the tiles use.

    Args:
        net: Stage-2 network with ``estimate_prior``.
        lq: Network input (B, C, H, W).
        noise: Start vectors ``x_T`` (B, 256); drawn from ``generator`` when omitted.
        generator: RNG for ``noise``.
        max_side: Prior budget (:func:`prior_input`); None: the whole image as it is.

    Returns:
        The IPR, (B, 256) float32.
    """
    x = prior_input(net, lq, max_side)
    with torch.autocast(device_type=lq.device.type, enabled=False):
        return net.estimate_prior(x.float(), noise=noise, generator=generator)


def tile_starts(length: int, tile: int, overlap: int, multiple: int = 1) -> List[int]:
    """Start offsets of the windows along one axis of a ``length``-long (padded) input.

    ``length`` and ``tile`` are expected to be multiples of ``multiple``; the stride is
    ``tile - overlap`` rounded down to a multiple of ``multiple`` (at least ``multiple``), and the
    last window ends exactly at ``length``.
    """
    if tile >= length:
        return [0]
    stride = max(multiple, (tile - overlap) // multiple * multiple)
    starts = list(range(0, length - tile, stride))
    starts.append(length - tile)
    return starts


def tile_windows(height: int, width: int, tile: int, overlap: int,
                 multiple: int = 1) -> List[Tuple[int, int, int, int]]:
    """``(y0, y1, x0, x1)`` windows covering a ``height`` x ``width`` (padded) input."""
    th, tw = min(tile, height), min(tile, width)
    return [(y, y + th, x, x + tw) for y in tile_starts(height, tile, overlap, multiple)
            for x in tile_starts(width, tile, overlap, multiple)]


def _axis_weights(starts: Sequence[int], size: int, scale: int, dtype: torch.dtype,
                  device: torch.device) -> List[torch.Tensor]:
    """Per-window 1-D blending weights (output space): linear ramps across actual overlaps."""
    weights = []
    n = size * scale
    for i, start in enumerate(starts):
        w = torch.ones(n, dtype=dtype, device=device)
        if i > 0:
            ov = (starts[i - 1] + size - start) * scale
            if ov > 0:
                w[:ov] = (torch.arange(ov, dtype=dtype, device=device) + 0.5) / ov
        if i < len(starts) - 1:
            ov = (start + size - starts[i + 1]) * scale
            if ov > 0:
                down = (ov - torch.arange(ov, dtype=dtype, device=device) - 0.5) / ov
                w[n - ov:] = torch.minimum(w[n - ov:], down)
        weights.append(w)
    return weights


def restore_tiled(net, lq: torch.Tensor, prior: Optional[torch.Tensor] = None, *,
                  tile: Optional[int] = None, tile_overlap: int = DEFAULT_TILE_OVERLAP,
                  tile_batch: int = 1, noise: Optional[torch.Tensor] = None,
                  generator: Optional[torch.Generator] = None,
                  prior_max_side: Optional[int] = None,
                  precision: str = 'auto', fallback: bool = True,
                  progress: Optional[ProgressFn] = None) -> torch.Tensor:
    """Restore ``lq`` tile by tile under one global prior per image.

    Call it under ``torch.no_grad()`` / ``torch.inference_mode()``.

    Args:
        net: Stage-2 DiffIR network (``restore``, ``estimate_prior``, ``input_multiple``,
            ``scale``), in eval mode.
        lq: Network input (B, C, H, W) on the network's device.
        prior: Explicit IPR (B, 256); estimated with :func:`estimate_global_prior` when omitted.
        tile: Window side in input pixels (rounded up to ``net.input_multiple``); ``None``/``0``
            runs the whole image at once.
        tile_overlap: Minimum overlap between neighbouring windows (input pixels).
        tile_batch: Windows per forward.
        noise, generator: For the prior estimate.
        prior_max_side: Budget of the prior estimate (:func:`prior_input`; 0: never
            downscale); None: :data:`DEFAULT_PRIOR_MAX_SIDE` when the image is cut into several
            tiles, the whole image otherwise.
        precision: ``'auto'`` (bf16 on CUDA, fp32 on the CPU), ``'fp32'``, ``'bf16'`` or
            ``'fp16'`` for the DIRformer (see :mod:`diffir_mm.inference.precision`).
        fallback: Recompute non-finite reduced-precision output in fp32 (else raise).
        progress: Called as ``progress(done, total)`` after each window batch.

    Returns:
        (B, out_channels, H·scale, W·scale) float32 on ``lq``'s device.
    """
    precision = resolve_precision(precision, lq.device)
    if tile is not None and tile < 0:
        raise ValueError(f'tile must be positive (or 0/None for no tiling), got {tile}')
    if tile_overlap < 0:
        raise ValueError(f'tile_overlap must be >= 0, got {tile_overlap}')
    if tile_batch < 1:
        raise ValueError(f'tile_batch must be >= 1, got {tile_batch}')
    scale = int(getattr(net, 'scale', 1))
    multiple = int(getattr(net, 'input_multiple', 1))
    b, _, h, w = lq.shape
    padded, _ = pad_to_multiple(lq, multiple)
    hp, wp = padded.shape[-2:]
    if tile:
        tile = int(math.ceil(tile / multiple) * multiple)
        if tile_overlap >= tile:
            raise ValueError(f'tile_overlap ({tile_overlap}) must be smaller than the tile '
                             f'({tile} after rounding up to a multiple of {multiple})')
    tiled = bool(tile) and (tile < hp or tile < wp)
    if prior is None:
        if prior_max_side is None and tiled:
            prior_max_side = DEFAULT_PRIOR_MAX_SIDE
        prior = estimate_global_prior(net, lq, noise=noise, generator=generator,
                                      max_side=prior_max_side)
    if not tiled:
        out = run_with_precision(net.restore, lq, prior, precision=precision, fallback=fallback,
                                 what='the network')
        if progress is not None:
            progress(1, 1)
        return out

    ys = tile_starts(hp, tile, tile_overlap, multiple)
    xs = tile_starts(wp, tile, tile_overlap, multiple)
    th, tw = min(tile, hp), min(tile, wp)
    wy = _axis_weights(ys, th, scale, torch.float32, lq.device)
    wx = _axis_weights(xs, tw, scale, torch.float32, lq.device)
    jobs = [(i, iy, ix) for i in range(b) for iy in range(len(ys)) for ix in range(len(xs))]

    acc = None
    weight = torch.zeros(1, hp * scale, wp * scale, dtype=torch.float32, device=lq.device)
    for i in range(len(ys)):
        for j in range(len(xs)):
            y0, x0 = ys[i] * scale, xs[j] * scale
            weight[:, y0:y0 + th * scale, x0:x0 + tw * scale] += wy[i][:, None] * wx[j][None, :]

    for first in range(0, len(jobs), tile_batch):
        chunk = jobs[first:first + tile_batch]
        x = torch.stack([padded[n, :, ys[iy]:ys[iy] + th, xs[ix]:xs[ix] + tw]
                         for n, iy, ix in chunk])
        z = prior[[n for n, _, _ in chunk]]
        out = run_with_precision(net.restore, x, z, precision=precision, fallback=fallback,
                                 what='the network')
        if acc is None:
            acc = torch.zeros(b, out.shape[1], hp * scale, wp * scale, dtype=torch.float32,
                              device=lq.device)
        for k, (n, iy, ix) in enumerate(chunk):
            y0, x0 = ys[iy] * scale, xs[ix] * scale
            acc[n, :, y0:y0 + th * scale, x0:x0 + tw * scale] += (
                out[k] * (wy[iy][:, None] * wx[ix][None, :]))
        del x, out
        if progress is not None:
            progress(min(first + tile_batch, len(jobs)), len(jobs))
    acc /= weight
    return acc[..., :h * scale, :w * scale]
