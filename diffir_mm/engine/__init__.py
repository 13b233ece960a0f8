"""Engine pieces: learning-rate schedulers."""
from .schedulers import CosineRestartCyclicLR

__all__ = ['CosineRestartCyclicLR']
