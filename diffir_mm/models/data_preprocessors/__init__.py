"""Data preprocessors: the batched, device-side Real-ESRGAN degradation of DiffIR-RealSR."""
from .degradations import DiffJPEG, filter2d, usm_sharpen
from .real_esrgan_preprocessor import RealESRGANDegradationPreprocessor, TrainingPairQueue

__all__ = ['RealESRGANDegradationPreprocessor', 'TrainingPairQueue', 'DiffJPEG', 'filter2d',
           'usm_sharpen']
