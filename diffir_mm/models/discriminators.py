"""pix2pixHD's N-layer patch discriminator, as LaMa / DiffIR-inpainting use it.

Official config ``discriminator/pix2pixhd_nlayer.yaml``: ``input_nc 3, ndf 64, n_layers 4``,
BatchNorm (LaMa ``saicinpainting/training/modules/pix2pixhd.py::NLayerDiscriminator``): 4x4
convolutions with padding 2; a stride-2 conv + LeakyReLU(0.2), ``n_layers - 1`` stride-2 conv +
BN + LeakyReLU blocks, one stride-1 conv + BN + LeakyReLU block (widths double up to 512) and a
stride-1 conv to one logit channel. The blocks are named ``model0`` ... ``model{n_layers + 1}``
as in LaMa, so the ``discriminator.*`` weights of an official Lightning checkpoint load as is.
MMagic's ``PatchDiscriminator`` (pix2pix) pads by 1 and returns no features, hence this module.
"""
from __future__ import annotations

from typing import List, Tuple

import torch
from mmagic.registry import MODELS
from torch import nn

__all__ = ['NLayerPatchDiscriminator']


@MODELS.register_module()
class NLayerPatchDiscriminator(nn.Module):
    """pix2pixHD N-layer discriminator returning patch logits (and, on request, its features).

    Args:
        in_channels: Input channels.
        ndf: Width of the first layer.
        n_layers: Number of downsampling conv layers.
    """

    def __init__(self, in_channels: int = 3, ndf: int = 64, n_layers: int = 4) -> None:
        super().__init__()
        self.n_layers = n_layers
        blocks = [[nn.Conv2d(in_channels, ndf, 4, stride=2, padding=2),
                   nn.LeakyReLU(0.2, True)]]
        width = ndf
        for stride in [2] * (n_layers - 1) + [1]:
            prev, width = width, min(width * 2, 512)
            blocks.append([nn.Conv2d(prev, width, 4, stride=stride, padding=2),
                           nn.BatchNorm2d(width), nn.LeakyReLU(0.2, True)])
        blocks.append([nn.Conv2d(width, 1, 4, stride=1, padding=2)])
        for i, layers in enumerate(blocks):
            setattr(self, f'model{i}', nn.Sequential(*layers))

    def forward_features(self, x: torch.Tensor) -> Tuple[torch.Tensor, List[torch.Tensor]]:
        """Logits and the outputs of every block before the last (for feature matching).

        Args:
            x: Images ``(B, C, H, W)``.

        Returns:
            ``(logits (B, 1, h, w), [n_layers + 1 feature maps])``.
        """
        features = []
        for i in range(self.n_layers + 2):
            x = getattr(self, f'model{i}')(x)
            features.append(x)
        return features[-1], features[:-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Patch logits ``(B, 1, h, w)`` (what GAN losses and the R1 penalty call)."""
        return self.forward_features(x)[0]
