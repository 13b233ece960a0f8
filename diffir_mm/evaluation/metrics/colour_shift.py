"""Colour error: how far the mean colour of a restored region is from the ground truth's.

PSNR and SSIM hardly tell a colour cast from noise: a fill that is 10 levels too dark in one
channel costs little PSNR on an image whose holes cover a tenth of it, yet shows as a tinted
stroke. This metric measures the cast itself: per channel, the mean of the prediction minus the
mean of the ground truth over the region (the holes of an inpainting mask, ``mask != 0``; the
whole image when there is no mask), in the images' levels (0-255); the index is the mean
absolute shift over the channels. A fill that is right on average scores 0 whatever its
texture, so it complements PSNR rather than replacing it.
"""
from __future__ import annotations

from typing import Optional, Union

import numpy as np
import torch
from mmagic.evaluation.metrics.base_sample_wise_metric import BaseSampleWiseMetric
from mmagic.registry import METRICS

__all__ = ['ColourError', 'colour_shift']

Array = Union[np.ndarray, torch.Tensor]


def _numpy(x: Array) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def colour_shift(gt: Array, pred: Array, mask: Optional[Array] = None,
                 channel_axis: int = -1) -> np.ndarray:
    """Per-channel mean of ``pred - gt`` over the region ``mask != 0`` (everything if None).

    Args:
        gt: Ground truth, e.g. ``(H, W, C)`` (or ``(C, H, W)`` with ``channel_axis=0``).
        pred: Prediction of the same shape.
        mask: ``(H, W)``, ``(H, W, 1)`` or ``(1, H, W)``; non-zero = inside the region.
        channel_axis: Axis of the channels in ``gt`` / ``pred``.

    Returns:
        float64 ``(C,)``: the signed shift of each channel (positive: too bright).

    Raises:
        ValueError: (one line) shapes that do not fit, or an empty region.
    """
    gt = np.moveaxis(_numpy(gt).astype(np.float64), channel_axis, -1)
    pred = np.moveaxis(_numpy(pred).astype(np.float64), channel_axis, -1)
    if gt.shape != pred.shape:
        raise ValueError(f'colour shift of images of different shapes: {gt.shape} and '
                         f'{pred.shape}')
    diff = (pred - gt).reshape(-1, gt.shape[-1])
    if mask is None:
        return diff.mean(0)
    region = np.squeeze(_numpy(mask)) != 0
    if region.shape != gt.shape[:-1]:
        raise ValueError(f'the mask {tuple(np.shape(mask))} does not fit the image {gt.shape}')
    if not region.any():
        raise ValueError('colour shift over an empty region (the mask has no hole)')
    return diff[region.reshape(-1)].mean(0)


@METRICS.register_module()
class ColourError(BaseSampleWiseMetric):
    """Mean absolute per-channel shift of the mean colour inside the holes (0-255 levels).

    Args:
        gt_key: Key of the ground truth (``gt_img``).
        pred_key: Key of the prediction (``pred_img``).
        mask_key: Key of the hole mask (``mask``); None scores the whole image.
        collect_device: Device of the cross-rank collection.
        prefix: Prefix of the metric key.

    Metrics:
        - ColourError (float): the mean over images of ``mean_c |colour_shift_c|``.
    """

    metric = 'ColourError'

    def __init__(self, gt_key: str = 'gt_img', pred_key: str = 'pred_img',
                 mask_key: Optional[str] = 'mask', collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(gt_key=gt_key, pred_key=pred_key, mask_key=mask_key,
                         collect_device=collect_device, prefix=prefix)

    def process_image(self, gt: Array, pred: Array, mask: Array) -> float:
        """The colour error of one ``(C, H, W)`` image (``mask``: ``(1, H, W)``; without
        ``mask_key`` MMagic passes ones shaped like the image, and the whole image counts)."""
        region = mask if self.mask_key is not None else None
        return float(np.abs(colour_shift(gt, pred, region, channel_axis=0)).mean())
