"""MMagic-side models: registered generators, DiffIR editors, losses, data preprocessors."""
from .data_preprocessors import RealESRGANDegradationPreprocessor
from .editors import DiffIRInpaintS1, DiffIRInpaintS2, DiffIRS1, DiffIRS2, DiffIRS2GAN
from .discriminators import NLayerPatchDiscriminator
from .generators import DIFFIR_GENERATORS
from .losses import VGGPerceptualLoss

__all__ = ['DiffIRS1', 'DiffIRS2', 'DiffIRS2GAN', 'DiffIRInpaintS1', 'DiffIRInpaintS2',
           'DIFFIR_GENERATORS', 'NLayerPatchDiscriminator', 'VGGPerceptualLoss',
           'RealESRGANDegradationPreprocessor']
