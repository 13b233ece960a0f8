"""ColourError / colour_shift: the mean colour cast inside the holes (or of the whole image)."""
import numpy as np
import pytest
import torch

from helpers import sample_image

pytest.importorskip('mmagic.evaluation')

from mmagic.registry import METRICS  # noqa: E402

from diffir_mm.evaluation import ColourError  # noqa: E402
from diffir_mm.evaluation.metrics.colour_shift import colour_shift  # noqa: E402

SHIFT = np.array([6.0, -3.0, 0.0])  # RGB levels added to the holes


@pytest.fixture(scope='module')
def case():
    """A photo, a hole mask, and a prediction whose holes are tinted by SHIFT and whose known
    pixels are noisy (noise that must not count)."""
    rng = np.random.default_rng(0)
    gt = sample_image('astronaut', 64).astype(np.float64)
    holes = np.zeros(gt.shape[:2], bool)
    holes[10:30, 5:50] = True
    pred = gt.copy()
    pred[holes] += SHIFT
    pred[~holes] += rng.normal(0, 20, pred[~holes].shape)
    return gt, pred, holes


def _sample(gt, pred, holes=None):
    def chw_bgr(img):
        return torch.from_numpy(np.ascontiguousarray(img[..., ::-1].transpose(2, 0, 1))).float()

    sample = dict(gt_img=chw_bgr(gt), output=dict(pred_img=chw_bgr(pred)))
    if holes is not None:
        sample['mask'] = torch.from_numpy(holes.astype(np.float32))[None]
    return sample


def test_colour_shift_is_the_signed_mean_difference_in_the_holes(case):
    gt, pred, holes = case
    np.testing.assert_allclose(colour_shift(gt, pred, holes), SHIFT, atol=1e-9)
    # channel-first images and an (H, W, 1) mask give the same
    chw = colour_shift(gt.transpose(2, 0, 1), pred.transpose(2, 0, 1), holes[..., None],
                       channel_axis=0)
    np.testing.assert_allclose(chw, SHIFT, atol=1e-9)
    # without a mask the whole image counts, the noise of the known pixels included
    whole = (pred - gt).reshape(-1, 3).mean(0)
    np.testing.assert_allclose(colour_shift(gt, pred), whole, atol=1e-9)


def test_metric_is_the_mean_absolute_shift_in_the_holes(case):
    gt, pred, holes = case
    metric = METRICS.build(dict(type='ColourError', prefix='demo'))
    assert isinstance(metric, ColourError)
    metric.process([], [_sample(gt, pred, holes)])
    metric.process([], [_sample(gt, gt, holes)])  # a perfect second image
    result = metric.compute_metrics(metric.results)
    assert result['ColourError'] == pytest.approx(np.abs(SHIFT).mean() / 2, abs=1e-6)


def test_metric_without_mask_scores_the_whole_image(case):
    gt, pred, holes = case
    metric = METRICS.build(dict(type='ColourError', mask_key=None))
    metric.process([], [_sample(gt, pred)])
    expected = np.abs((pred - gt).reshape(-1, 3).mean(0)).mean()
    assert metric.compute_metrics(metric.results)['ColourError'] == pytest.approx(expected,
                                                                                  abs=1e-6)


def test_bad_inputs_are_one_line_errors(case):
    gt, pred, holes = case
    with pytest.raises(ValueError, match='no hole'):
        colour_shift(gt, pred, np.zeros_like(holes))
    with pytest.raises(ValueError, match='does not fit'):
        colour_shift(gt, pred, holes[:-1])
    with pytest.raises(ValueError, match='different shapes'):
        colour_shift(gt, pred[:-1])
