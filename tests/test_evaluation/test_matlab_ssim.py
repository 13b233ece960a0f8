"""MatlabSSIM against an independent MATLAB-settings reference built on scipy.

The reference follows MATLAB's documented ``ssim`` for an RGB uint8 array treated as a 3-D
volume: ``scipy.ndimage.gaussian_filter`` over rows, columns *and* channels with sigma 1.5, an
11-tap window (radius ``ceil(3 * 1.5) = 5``, i.e. ``truncate = 5 / 1.5``), ``'nearest'``
(MATLAB ``'replicate'``) padding, L = 255. Real photos from scikit-image, blurred / noised.
"""
import cv2
import numpy as np
import pytest
import skimage.data
import torch
from mmagic.evaluation.metrics import SSIM
from scipy.ndimage import gaussian_filter

import diffir_mm.evaluation  # noqa: F401  (registers MatlabSSIM)
from diffir_mm.evaluation.metrics import matlab_ssim
from mmagic.registry import METRICS

SIGMA = 1.5
TRUNCATE = 5 / SIGMA  # scipy radius = int(truncate * sigma + 0.5) = 5 -> 11 taps


def _reference_ssim(img: np.ndarray, ref: np.ndarray) -> float:
    a, b = img.astype(np.float64), ref.astype(np.float64)

    def blur(x):
        return gaussian_filter(x, sigma=SIGMA, mode='nearest', truncate=TRUNCATE)

    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mu_a, mu_b = blur(a), blur(b)
    s_a = blur(a * a) - mu_a ** 2
    s_b = blur(b * b) - mu_b ** 2
    s_ab = blur(a * b) - mu_a * mu_b
    num = (2 * mu_a * mu_b + c1) * (2 * s_ab + c2)
    den = (mu_a ** 2 + mu_b ** 2 + c1) * (s_a + s_b + c2)
    return float((num / den).mean())


def _pairs():
    """(name, restored-like uint8 RGB, GT uint8 RGB) on real photos."""
    rng = np.random.default_rng(0)
    out = []
    for name in ('astronaut', 'chelsea', 'coffee'):
        gt = getattr(skimage.data, name)()[:160, :200, :3].copy()
        blurred = cv2.GaussianBlur(gt, (7, 7), 1.2)
        noisy = np.clip(blurred + rng.normal(0, 6, gt.shape), 0, 255).round().astype(np.uint8)
        out.append((name, noisy, gt))
    return out


@pytest.mark.parametrize('name,img,gt', _pairs(), ids=lambda v: v if isinstance(v, str) else '')
def test_matches_scipy_reference_on_photos(name, img, gt):
    ours = matlab_ssim(img, gt)
    ref = _reference_ssim(img, gt)
    assert abs(ours - ref) < 1e-6, (name, ours, ref)
    # a 3-D volume, not the mean of three 2-D SSIMs
    per_channel = np.mean([_reference_ssim(img[..., c], gt[..., c]) for c in range(3)])
    assert abs(ours - per_channel) > 1e-4
    assert matlab_ssim(gt, gt) == pytest.approx(1.0, abs=1e-12)
    # a 2-D (grayscale) image: MATLAB's 2-D imgaussfilt path
    gray, gray_gt = img[..., 1], gt[..., 1]
    assert abs(matlab_ssim(gray, gray_gt) - _reference_ssim(gray, gray_gt)) < 1e-6


def _bgr_chw(rgb):
    return torch.from_numpy(np.ascontiguousarray(rgb[..., ::-1].transpose(2, 0, 1))).float()


def test_registered_metric_vs_mmagic_ssim(capsys):
    """The evaluator path (BGR CHW floats from MMagic) gives the same number; report both SSIMs."""
    metric = METRICS.build(dict(type='MatlabSSIM', prefix='GoPro'))
    mm_ssim = SSIM(crop_border=0)
    rows = []
    for name, img, gt in _pairs():
        # an un-rounded float prediction is rounded like the saved PNG the MATLAB script reads
        pred = _bgr_chw(img) + 0.3
        sample = dict(gt_img=_bgr_chw(gt), output=dict(pred_img=pred))
        metric.process([], [sample])
        mm_ssim.process([], [sample])
        ours = metric.results[-1]['MatlabSSIM']
        assert abs(ours - _reference_ssim(img, gt)) < 1e-6
        rows.append((name, ours, mm_ssim.results[-1]['SSIM']))
    result = metric.compute_metrics(metric.results)
    assert result['MatlabSSIM'] == pytest.approx(np.mean([r[1] for r in rows]), abs=1e-12)
    with capsys.disabled():
        for name, ours, mm in rows:
            print(f'\n{name}: MATLAB-style SSIM {ours:.6f}  MMagic SSIM {mm:.6f}')
    # the volume filter also averages across channels: MMagic's per-channel SSIM reads lower
    assert all(ours > mm + 1e-4 for _, ours, mm in rows)
