"""SSIM as MATLAB's ``ssim(A, ref)`` computes it on uint8 RGB images: one 3-D volume.

The deblurring SSIM of the DiffIR paper (GoPro / HIDE) comes from the official
``DiffIR-demotionblur/evaluate_gopro_hide.m``, which calls ``ssim(input, gt)`` on the saved
uint8 RGB images. For an ``H x W x 3`` array MATLAB does not average three per-channel SSIMs
(what MMagic's ``SSIM`` does): it filters the whole volume with a 3-D Gaussian that also runs
across the three channels. MATLAB's settings, reproduced here:

* Gaussian standard deviation ``Radius = 1.5`` on every axis (rows, columns, channels);
* window ``2 * ceil(3 * 1.5) + 1 = 11`` taps per axis, normalised to sum 1;
* ``'replicate'`` padding on every axis (so the 3 channels are padded by 5 edge copies);
* uint8 images converted to double without rescaling; dynamic range ``L = 255``,
  ``C1 = (0.01 L)^2``, ``C2 = (0.03 L)^2``, ``C3 = C2 / 2`` (equation 13 of Wang et al.);
* the index is the mean of the SSIM map over all voxels.

Predictions are rounded to uint8 first (``quantize=True``), because the official script reads
the saved PNG results.
"""
from __future__ import annotations

import math
from typing import Optional

import cv2
import numpy as np
import torch
from mmagic.evaluation.metrics.base_sample_wise_metric import BaseSampleWiseMetric
from mmagic.registry import METRICS

from diffir_mm.utils import host_reads

__all__ = ['MatlabSSIM', 'matlab_ssim']

#: MATLAB's default ``Radius`` (Gaussian standard deviation) of ``ssim``.
MATLAB_SSIM_SIGMA = 1.5


def _gaussian_taps(sigma: float) -> np.ndarray:
    """MATLAB's 1-D Gaussian of ``ssim``: ``2 * ceil(3 sigma) + 1`` taps summing to 1."""
    radius = math.ceil(3 * sigma)
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    taps = np.exp(-x ** 2 / (2 * sigma ** 2))
    return taps / taps.sum()


def _channel_mixing(taps: np.ndarray, channels: int) -> np.ndarray:
    """The filter along the channel axis as a ``channels x channels`` matrix.

    With ``'replicate'`` padding, tap ``k`` of output channel ``c`` reads channel
    ``clip(c + k - radius, 0, channels - 1)``; summing the taps that land on the same channel
    gives the exact matrix (11 taps over 3 channels mostly read the edge copies).
    """
    radius = len(taps) // 2
    mixing = np.zeros((channels, channels))
    for out in range(channels):
        for k, weight in enumerate(taps):
            mixing[out, min(max(out + k - radius, 0), channels - 1)] += weight
    return mixing


def _filter_replicate(volume: np.ndarray, taps: np.ndarray) -> np.ndarray:
    """Separable correlation of an ``H x W x C`` float64 volume with ``taps`` on every axis.

    Rows and columns: OpenCV's separable filter with replicated borders; channels: the matrix
    of :func:`_channel_mixing`. A depth-1 volume (2-D image) is left as it is along the
    channels, as MATLAB's 2-D ``imgaussfilt``.
    """
    planar = cv2.sepFilter2D(volume, cv2.CV_64F, taps, taps, borderType=cv2.BORDER_REPLICATE)
    planar = planar.reshape(volume.shape)
    return planar @ _channel_mixing(taps, volume.shape[2]).T


def matlab_ssim(img: np.ndarray, ref: np.ndarray, sigma: float = MATLAB_SSIM_SIGMA,
                data_range: float = 255.0) -> float:
    """MATLAB ``ssim(img, ref)`` with default options, for 2-D or 3-D (H x W x C) arrays.

    Args:
        img: Image (or volume) to score, values in ``[0, data_range]`` (uint8 for the paper).
        ref: Reference of the same shape.
        sigma: Gaussian standard deviation (MATLAB ``'Radius'``).
        data_range: Dynamic range ``L`` (255 for uint8).

    Returns:
        The mean of the SSIM map over all pixels / voxels.
    """
    if img.shape != ref.shape:
        raise ValueError(f'ssim needs images of the same shape, got {img.shape} and {ref.shape}')
    if img.ndim not in (2, 3):
        raise ValueError(f'ssim needs an H x W or H x W x C array, got shape {img.shape}')
    a, b = (np.asarray(x, dtype=np.float64).reshape(*img.shape[:2], -1) for x in (img, ref))
    taps = _gaussian_taps(sigma)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mu_a, mu_b = _filter_replicate(a, taps), _filter_replicate(b, taps)
    mu_ab, mu_a2, mu_b2 = mu_a * mu_b, mu_a ** 2, mu_b ** 2
    var_a = _filter_replicate(a * a, taps) - mu_a2
    var_b = _filter_replicate(b * b, taps) - mu_b2
    cov = _filter_replicate(a * b, taps) - mu_ab
    ssim_map = ((2 * mu_ab + c1) * (2 * cov + c2)) / ((mu_a2 + mu_b2 + c1) * (var_a + var_b + c2))
    return float(ssim_map.mean())  # float64 throughout, as MATLAB for integer images


@METRICS.register_module()
class MatlabSSIM(BaseSampleWiseMetric):
    """The paper's deblurring SSIM: MATLAB ``ssim`` on uint8 RGB as one volume (see module doc).

    Reads ``gt_img`` and ``pred_img`` (CHW, 0-255, BGR as MMagic's evaluators hand them over),
    converts them to HWC RGB and scores them with :func:`matlab_ssim`.

    Args:
        gt_key: Key of the ground truth. Default: ``'gt_img'``.
        pred_key: Key of the prediction. Default: ``'pred_img'``.
        crop_border: Pixels removed from every edge before scoring (0 in the paper).
        quantize: Round and clip both images to uint8 first, as the official script reads
            saved PNGs. Default: True.
        collect_device: Device for collecting results across ranks.
        prefix: Prefix of the metric key, e.g. ``'GoPro'`` -> ``GoPro/MatlabSSIM``.

    Metrics:
        - MatlabSSIM (float): mean MATLAB-style SSIM over the images.
    """

    metric = 'MatlabSSIM'

    def __init__(self, gt_key: str = 'gt_img', pred_key: str = 'pred_img',
                 crop_border: int = 0, quantize: bool = True, collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(gt_key=gt_key, pred_key=pred_key, mask_key=None,
                         collect_device=collect_device, prefix=prefix)
        self.crop_border = int(crop_border)
        self.quantize = quantize

    def _to_hwc_rgb(self, img) -> np.ndarray:
        arr = host_reads.read_array(img) if isinstance(img, torch.Tensor) else np.asarray(img)
        arr = arr.astype(np.float64)
        if arr.ndim == 3:
            arr = arr.transpose(1, 2, 0)  # CHW -> HWC
            if arr.shape[2] == 3 and self.channel_order.upper() == 'BGR':
                arr = arr[..., ::-1]
        if self.quantize:
            arr = np.clip(np.round(arr), 0, 255)
        if self.crop_border:
            c = self.crop_border
            arr = arr[c:-c, c:-c, ...]
        return arr

    def process_image(self, gt, pred, mask) -> float:
        """MATLAB-style SSIM of one prediction against its ground truth."""
        return matlab_ssim(self._to_hwc_rgb(pred), self._to_hwc_rgb(gt))
