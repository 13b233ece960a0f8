"""fp32 / bf16 / fp16 execution and the non-finite-output fp32 fallback."""
import warnings

import numpy as np
import pytest
import torch
from helpers import BF16_REL_TOL, rel_error, tiny_net

from diffir_mm.inference import (NonFiniteOutputError, PrecisionFallbackWarning, Restorer,
                                 restore_tiled, run_with_precision)
from diffir_mm.inference import precision as precision_module
from diffir_mm.inference.precision import normalize_precision, resolve_precision


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
    assert normalize_precision('auto') == 'auto'
    with pytest.raises(ValueError, match='precision'):
        normalize_precision('int8')


# ------------------------------------------------------------------ 'auto' (issue 24, item 4)
def test_auto_is_fp32_on_the_cpu():
    assert resolve_precision('auto', 'cpu') == 'fp32'
    assert resolve_precision('AUTO', torch.device('cpu')) == 'fp32'
    assert resolve_precision('fp16', 'cpu') == 'fp16'  # explicit names are kept
    restorer = Restorer(tiny_net('deblur'), device='cpu')
    assert restorer.precision == 'fp32' and restorer.auto_precision
    assert ', fp32 (auto),' in restorer.describe()


@pytest.mark.parametrize('capability, expected', [((9, 0), 'bf16'), ((8, 0), 'bf16'),
                                                  ((7, 5), 'fp32')])
def test_auto_on_cuda_follows_the_bf16_units(monkeypatch, capability, expected):
    # no GPU needed: only the capability query is faked
    monkeypatch.setattr(torch.cuda, 'get_device_capability', lambda device=None: capability)
    assert resolve_precision('auto', 'cuda') == expected
    assert resolve_precision('auto', 'cuda:1') == expected
    assert resolve_precision('fp32', 'cuda') == 'fp32'


def test_restore_tiled_resolves_auto_on_the_input_device(monkeypatch):
    seen = []
    real = precision_module.autocast_context

    def spy(device, precision):
        seen.append((torch.device(device).type, precision))
        return real(device, precision)

    monkeypatch.setattr(precision_module, 'autocast_context', spy)
    net = tiny_net('deblur')
    with torch.no_grad():
        restore_tiled(net, torch.rand(1, 3, 16, 16), noise=_noise())  # default: 'auto'
    assert seen == [('cpu', 'fp32')]


@pytest.mark.parametrize('preset', ['deblur', 'sr_x4', 'inpaint'])
def test_auto_switched_to_bf16_stays_within_tolerance_of_fp32(monkeypatch, preset):
    """The one-line switch of AUTO_PRECISION (here for the CPU) selects bf16 in the Restorer,
    whose output stays within the documented tolerance of fp32 (bf16 autocast on the CPU)."""
    rng = np.random.default_rng(0)
    img = rng.random((32, 40, 3), dtype=np.float32)
    mask = (rng.random((32, 40)) > 0.7).astype(np.float32) if preset == 'inpaint' else None
    ref = Restorer(tiny_net(preset), device='cpu', precision='fp32').restore(img, mask=mask)
    monkeypatch.setitem(precision_module.AUTO_PRECISION, 'cpu', 'bf16')
    restorer = Restorer(tiny_net(preset), device='cpu')
    assert restorer.precision == 'bf16' and ', bf16 (auto),' in restorer.describe()
    with warnings.catch_warnings():
        warnings.simplefilter('error', PrecisionFallbackWarning)
        out = restorer.restore(img, mask=mask)
    rel = rel_error(out, ref)
    assert 0 < rel < BF16_REL_TOL  # > 0: bf16 did run
