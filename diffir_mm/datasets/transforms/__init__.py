"""Data transforms registered into ``mmagic.registry.TRANSFORMS``."""
from .lama_augment import LamaOpticalDistortion, SeededAlbumentations
from .lama_eval import LamaEvalSample
from .masks import GenerateInpaintingMask, LoadInpaintingMask
from .real_esrgan_degradations import (GenerateRealESRGANKernels, PadToMinSize, Quantize,
                                       RealESRGANRandomBlur,
                                       RealESRGANRandomNoise,
                                       RealESRGANRandomResize)

__all__ = [
    'RealESRGANRandomBlur', 'RealESRGANRandomResize', 'RealESRGANRandomNoise',
    'Quantize', 'PadToMinSize', 'GenerateRealESRGANKernels', 'GenerateInpaintingMask',
    'LoadInpaintingMask', 'SeededAlbumentations', 'LamaOpticalDistortion', 'LamaEvalSample'
]
