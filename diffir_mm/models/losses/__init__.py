"""Losses of the DiffIR recipes."""
from .lama import DiscFeatureMatchingLoss, MaskedL1Loss, NonSaturatingR1Loss
from .perceptual import VGGPerceptualLoss
from .resnet_pl import ResNetPLLoss

__all__ = ['VGGPerceptualLoss', 'MaskedL1Loss', 'NonSaturatingR1Loss', 'DiscFeatureMatchingLoss',
           'ResNetPLLoss']
