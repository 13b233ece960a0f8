"""CPEN: the compact IR-prior extraction network that maps images to the 256-d IPR."""
from __future__ import annotations

import torch
from torch import nn

from .dirformer import IPR_DIM

__all__ = ['CPEN']

_FEATS = IPR_DIM // 4  # 64, hard-coded in the official code


class _ResBlock(nn.Module):
    """conv3x3 -> LeakyReLU(0.1) -> conv3x3, plus identity (keys ``body.0``/``body.2``)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1), nn.LeakyReLU(0.1, inplace=True),
            nn.Conv2d(channels, channels, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class CPEN(nn.Module):
    """Conv encoder + global average pool + 2-layer MLP producing the IPR ``z`` (B, 256).

    The input arrangement (pixel-unshuffled degraded image, plus the ground truth for stage 1) is
    done by the caller (:class:`~diffir_mm.archs.diffir_net.DiffIRS1Net` / ``DiffIRS2Net``); this
    module only sees the arranged tensor.

    Args:
        in_channels: Channels of the arranged input.
        n_encoder_res: Residual blocks in the encoder.
    """

    def __init__(self, in_channels: int, n_encoder_res: int = 6) -> None:
        super().__init__()
        f = _FEATS
        self.E = nn.Sequential(
            nn.Conv2d(in_channels, f, 3, padding=1), nn.LeakyReLU(0.1, inplace=True),
            *[_ResBlock(f) for _ in range(n_encoder_res)],
            nn.Conv2d(f, f * 2, 3, padding=1), nn.LeakyReLU(0.1, inplace=True),
            nn.Conv2d(f * 2, f * 2, 3, padding=1), nn.LeakyReLU(0.1, inplace=True),
            nn.Conv2d(f * 2, f * 4, 3, padding=1), nn.LeakyReLU(0.1, inplace=True),
            nn.AdaptiveAvgPool2d(1))
        self.mlp = nn.Sequential(
            nn.Linear(f * 4, f * 4), nn.LeakyReLU(0.1, inplace=True),
            nn.Linear(f * 4, f * 4), nn.LeakyReLU(0.1, inplace=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.E(x).flatten(1))
