"""Inpainting inputs prepared as the official predictor prepares them: the hole rule and padding.

The official inference (``DiffIR-inpainting/bin/predict.py`` with LaMa's
``saicinpainting/evaluation/data.py`` and ``configs/prediction/default.yaml``):

* reads the image with PIL as RGB and the mask as PIL mode ``'L'`` (ITU-R 601-2 luma of a colour
  mask, alpha ignored), both divided by 255;
* pads both on the bottom/right to a multiple of 8 (``pad_out_to_modulo: 8``) with
  ``np.pad(mode='symmetric')`` -- the edge pixel is repeated, unlike the ``'reflect'`` padding
  of the SR/deblurring tests;
* makes every non-zero mask value a hole (``mask > 0``), so anti-aliased or JPEG-noisy edges
  count as hole;
* runs the network on ``cat(img * (1 - mask), mask)``, blends ``mask * pred + (1 - mask) * img``
  on the padded image and crops back;
* writes ``np.clip(x * 255, 0, 255).astype('uint8')``, i.e. it truncates.

:class:`~diffir_mm.inference.Restorer` follows the first five points exactly (functions below);
the written files are rounded (``round(255 * x)``, as every other diffir_mm output), a deliberate
difference: it removes the half-level darkening of truncation, and kept pixels come out
identical in both (``k / 255 * 255`` truncates back to ``k`` in float32).

Torch and NumPy only.
"""
from __future__ import annotations

import numpy as np
import torch

__all__ = ['hole_mask', 'holes_from_record', 'hole_batch', 'pad_symmetric', 'MODULO']

#: The official ``pad_out_to_modulo`` (also the inpainting network's input multiple).
MODULO = 8

# PIL's fixed-point RGB -> L weights (ITU-R 601-2: 0.299, 0.587, 0.114, scaled by 2**16)
_LUMA_WEIGHTS = (19595, 38470, 7471)


def hole_mask(mask: np.ndarray) -> np.ndarray:
    """Holes (``True``) of a mask array by the official rule: luma ``L > 0``.

    Args:
        mask: (H, W) or (H, W, 1) any value type; (H, W, 2) gray + alpha; (H, W, 3|4) RGB(A)
            in RGB order. 8-bit colour masks are converted to luma exactly as PIL's
            ``convert('L')`` (so ``(1, 0, 0)`` is *not* a hole); other colour masks use the
            real-valued luma.

    Returns:
        bool (H, W).
    """
    mask = np.asarray(mask)
    if mask.ndim == 3 and mask.shape[2] in (1, 2):
        mask = mask[..., 0]
    if mask.ndim == 2:
        return mask > 0
    if mask.ndim != 3 or mask.shape[2] not in (3, 4):
        raise ValueError(f'a mask must be (H, W), (H, W, 1) or colour (H, W, 3|4); got shape '
                         f'{mask.shape}')
    rgb = mask[..., :3]
    if rgb.dtype == np.uint8:
        wr, wg, wb = _LUMA_WEIGHTS
        luma = (rgb[..., 0].astype(np.int64) * wr + rgb[..., 1].astype(np.int64) * wg
                + rgb[..., 2].astype(np.int64) * wb + 0x8000) >> 16
        return luma > 0
    rgb = rgb.astype(np.float64)
    return (0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]) > 0


def holes_from_record(record) -> np.ndarray:
    """:func:`hole_mask` of a decoded :class:`~diffir_mm.inference.io.ImageRecord`.

    The record's float RGB is turned back into its source integers first (exact for 8/16-bit
    files), so a mask file gives the holes the official predictor finds in it.
    """
    rgb = record.rgb
    dtype = np.dtype(record.dtype)
    if dtype in (np.dtype(np.uint8), np.dtype(np.uint16)):
        top = np.iinfo(dtype).max
        rgb = np.rint(rgb * top).astype(dtype)
    return hole_mask(rgb)


def hole_batch(mask: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    """The ``(B, 1, H, W)`` float 0/1 holes of a mask tensor for a batch of images (``> 0``).

    The one rule of the restorer and the inpainting editors.

    Args:
        mask: ``(H, W)``, ``(B, H, W)`` or ``(B, 1, H, W)``; a single mask serves every image.
        images: The ``(B, C, H, W)`` batch the mask belongs to (device and dtype are taken
            from it).

    Raises:
        ValueError: (one line) a mask of another batch size, layout or image size.
    """
    m = torch.as_tensor(mask, device=images.device)
    if m.dim() == 2:
        m = m[None, None]
    elif m.dim() == 3:
        m = m[:, None]
    b, _, h, w = images.shape
    wanted = f'(B, 1, H, W) = ({b}, 1, {h}, {w})'
    if m.dim() != 4 or m.shape[1] != 1 or m.shape[0] not in (1, b):
        raise ValueError(f'a mask batch must be {wanted} and a single mask must be (H, W) or '
                         f'(1, 1, H, W); got {tuple(mask.shape)}')
    if m.shape[-2:] != images.shape[-2:]:
        raise ValueError(f'the mask is {m.shape[-1]}x{m.shape[-2]} (WxH), the image {w}x{h}: a '
                         f'mask must be {wanted}')
    return (m > 0).to(images.dtype).expand(b, -1, -1, -1)


def pad_symmetric(x: torch.Tensor, multiple: int = MODULO) -> torch.Tensor:
    """Pad (..., H, W) on the bottom/right to multiples of ``multiple`` like ``np.pad`` mode
    ``'symmetric'`` (mirror including the edge pixel; repeated for pads longer than the image)."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph:
        x = x.index_select(-2, _symmetric_index(h, h + ph, x.device))
    if pw:
        x = x.index_select(-1, _symmetric_index(w, w + pw, x.device))
    return x


def _symmetric_index(size: int, total: int, device: torch.device) -> torch.Tensor:
    i = torch.arange(total, device=device) % (2 * size)
    return torch.where(i < size, i, 2 * size - 1 - i)
