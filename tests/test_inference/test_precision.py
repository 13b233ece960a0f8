"""fp32 / bf16 / fp16 execution and the non-finite-output fp32 fallback."""
import warnings

import numpy as np
import pytest
import torch
from helpers import tiny_net

from diffir_mm.inference import (NonFiniteOutputError, PrecisionFallbackWarning, Restorer,
                                 restore_tiled, run_with_precision)
from diffir_mm.inference.precision import normalize_precision


def _nan_under_autocast(net, only_first=False):
    """Make ``net.restore`` return NaN whenever autocast is active (simulated fp16 overflow)."""
    original = net.restore
    calls = {'autocast': 0, 'fp32': 0}

    def restore(x, prior):
        if torch.is_autocast_enabled(x.device.type):
            calls['autocast'] += 1
            out = original(x, prior)
            if not only_first or calls['autocast'] == 1:
                out = out.clone()
                out[:, :, 0, 0] = float('nan')
                out[:, :, -1, -1] = float('inf')
            return out
        calls['fp32'] += 1
        return original(x, prior)

    net.restore = restore
    return calls


def _noise():
    return torch.randn(1, 256, generator=torch.Generator().manual_seed(0))


def test_fp16_non_finite_output_falls_back_to_fp32_with_warning():
    net = tiny_net('deblur')
    x = torch.rand(1, 3, 32, 40)
    with torch.no_grad():
        ref = restore_tiled(net, x, noise=_noise())
    calls = _nan_under_autocast(net)
    with pytest.warns(PrecisionFallbackWarning, match='fp16.*recomputed in fp32'):
        with torch.no_grad():
            out = restore_tiled(net, x, noise=_noise(), precision='fp16')
    assert calls == {'autocast': 1, 'fp32': 1}
    assert torch.isfinite(out).all()
    assert torch.equal(out, ref)  # the recomputation is the plain fp32 forward


def test_fallback_is_per_tile_batch():
    net = tiny_net('deblur')
    x = torch.rand(1, 3, 64, 64)
    calls = _nan_under_autocast(net, only_first=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        with torch.no_grad():
            out = restore_tiled(net, x, noise=_noise(), precision='fp16', tile=32,
                                tile_overlap=8)
    fallbacks = [w for w in caught if issubclass(w.category, PrecisionFallbackWarning)]
    assert len(fallbacks) == 1 and calls['fp32'] == 1 and calls['autocast'] >= 4
    assert torch.isfinite(out).all()


def test_fp16_without_fallback_refuses():
    net = tiny_net('deblur')
    _nan_under_autocast(net)
    with pytest.raises(NonFiniteOutputError, match='fp16'):
        with torch.no_grad():
            restore_tiled(net, torch.rand(1, 3, 16, 16), noise=_noise(), precision='fp16',
                          fallback=False)


def test_non_finite_fp32_output_raises():
    def bad(x):
        return x * float('nan')

    with pytest.raises(NonFiniteOutputError, match='fp32'):
        run_with_precision(bad, torch.ones(2), precision='fp32')


def test_restorer_fp16_fallback_writes_finite_image():
    net = tiny_net('deblur')
    _nan_under_autocast(net)
    restorer = Restorer(net, device='cpu', precision='fp16')
    img = np.random.default_rng(0).random((24, 24, 3), dtype=np.float32)
    with pytest.warns(PrecisionFallbackWarning):
        out = restorer.restore(img)
    assert np.isfinite(out).all()
    np.testing.assert_array_equal(out, Restorer(tiny_net('deblur'), device='cpu').restore(img))


@pytest.mark.parametrize('precision', ['bf16', 'fp16'])
def test_reduced_precision_runs_and_stays_close(precision):
    net = tiny_net('sr_x2')
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        ref = restore_tiled(net, x, noise=_noise())
        with warnings.catch_warnings():
            warnings.simplefilter('error', PrecisionFallbackWarning)
            out = restore_tiled(net, x, noise=_noise(), precision=precision)
    assert out.dtype == torch.float32 and out.shape == ref.shape
    assert float((out - ref).abs().max()) < 0.1


def test_precision_names():
    assert normalize_precision('FP16') == 'fp16'
    assert normalize_precision(torch.bfloat16) == 'bf16'
    assert normalize_precision(None) == 'fp32'
    with pytest.raises(ValueError, match='precision'):
        normalize_precision('int8')
