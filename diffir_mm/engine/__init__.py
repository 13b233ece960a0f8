"""Engine pieces: learning-rate schedulers and hooks."""
from .hooks import GeneratorEMAHook
from .schedulers import CosineRestartCyclicLR

__all__ = ['CosineRestartCyclicLR', 'GeneratorEMAHook']
