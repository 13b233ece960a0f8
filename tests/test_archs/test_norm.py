"""Channel LayerNorm (``diffir_mm.archs.norm``): Restormer's WithBias / BiasFree variants."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from diffir_mm.archs import ChannelLayerNorm, LayerNorm2d


def _random_affine(norm: ChannelLayerNorm) -> ChannelLayerNorm:
    with torch.no_grad():
        norm.weight.normal_()
        if norm.bias is not None:
            norm.bias.normal_()
    return norm


def test_with_bias_is_layer_norm_over_channels():
    torch.manual_seed(0)
    norm = _random_affine(ChannelLayerNorm(6, with_bias=True))
    x = torch.randn(2, 6, 5, 7) * 3 + 1
    expected = F.layer_norm(x.permute(0, 2, 3, 1), (6,), norm.weight, norm.bias,
                            eps=1e-5).permute(0, 3, 1, 2)
    torch.testing.assert_close(norm(x), expected, rtol=1e-5, atol=1e-5)


def test_bias_free_divides_by_the_std_without_centering():
    """``x / sqrt(var + 1e-5) * w``: variance around the mean, mean not subtracted."""
    torch.manual_seed(0)
    norm = _random_affine(ChannelLayerNorm(6, with_bias=False))
    x = torch.randn(2, 6, 5, 7) * 3 + 1
    var = x.var(dim=1, unbiased=False, keepdim=True)
    expected = x / torch.sqrt(var + 1e-5) * norm.weight[:, None, None]
    torch.testing.assert_close(norm(x), expected, rtol=1e-5, atol=1e-5)
    assert norm.bias is None


def test_official_parameter_names():
    assert set(dict(LayerNorm2d(4, 'WithBias').named_parameters())) == {'body.weight',
                                                                         'body.bias'}
    assert set(dict(LayerNorm2d(4, 'BiasFree').named_parameters())) == {'body.weight'}
    with pytest.raises(ValueError):
        LayerNorm2d(4, 'Other')
