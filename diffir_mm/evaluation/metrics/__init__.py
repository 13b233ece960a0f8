"""Metrics registered into ``mmagic.registry.METRICS``."""
from .base_perceptual_metric import BasePerceptualMetric
from .colour_shift import ColourError, colour_shift
from .dists_metric import DISTS
from .fid_metric import PairedFID
from .image_count_metric import ImageCount
from .lpips_metric import LPIPS
from .matlab_ssim import MatlabSSIM, matlab_ssim
from .niqe_metric import NoRefNIQE

__all__ = ['BasePerceptualMetric', 'LPIPS', 'DISTS', 'NoRefNIQE', 'ImageCount', 'MatlabSSIM',
           'matlab_ssim', 'PairedFID', 'ColourError', 'colour_shift']
