"""Losses of the DiffIR recipes."""
from .perceptual import VGGPerceptualLoss

__all__ = ['VGGPerceptualLoss']
