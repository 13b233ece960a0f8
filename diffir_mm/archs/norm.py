"""Channel LayerNorm used by the DIRformer (Restormer's per-pixel LayerNorm)."""
from __future__ import annotations

import torch
from torch import nn

__all__ = ['ChannelLayerNorm', 'LayerNorm2d']


class ChannelLayerNorm(nn.Module):
    """LayerNorm over the channel axis of a (B, C, H, W) tensor, applied per pixel.

    Args:
        channels: Number of channels ``C``.
        with_bias: ``True`` for the 'WithBias' variant ``(x - mu) / sigma * w + b``;
            ``False`` for Restormer's 'BiasFree' variant ``x / sigma * w``, whose variance is
            still taken around the mean but whose output is not mean-centred.
        eps: Added to the (biased) variance.
    """

    def __init__(self, channels: int, with_bias: bool = True, eps: float = 1e-5) -> None:
        super().__init__()
        self.with_bias = with_bias
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels)) if with_bias else None

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """The statistics part of the norm, without the affine ``weight``/``bias`` (fp32 for
        half-precision inputs)."""
        if x.dtype in (torch.float16, torch.bfloat16):
            x = x.float()  # statistics in fp32: large activations overflow fp16 variances
        # mean of squared deviations: same as var_mean(unbiased=False) but ~5x faster on NCHW
        mean = x.mean(dim=1, keepdim=True)
        centred = x - mean
        var = centred.square().mean(dim=1, keepdim=True)
        if self.with_bias:
            x = centred
        return x * torch.rsqrt(var + self.eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype
        x = self.normalize(x) * self.weight[:, None, None]
        if self.bias is not None:
            x = x + self.bias[:, None, None]
        return x.to(dtype)


class LayerNorm2d(nn.Module):
    """The DIRformer's norm layer, keeping the official ``norm.body.*`` parameter names.

    Args:
        channels: Number of channels.
        layer_norm_type: ``'WithBias'`` or ``'BiasFree'`` (the official ``LayerNorm_type``).
    """

    def __init__(self, channels: int, layer_norm_type: str = 'WithBias') -> None:
        super().__init__()
        if layer_norm_type not in ('WithBias', 'BiasFree'):
            raise ValueError("LayerNorm_type must be 'WithBias' or 'BiasFree', "
                             f'got {layer_norm_type!r}')
        self.body = ChannelLayerNorm(channels, with_bias=layer_norm_type == 'WithBias')

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)
