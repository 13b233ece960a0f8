"""Engine pieces: learning-rate schedulers, hooks and mmengine's local checkpoint loader."""
from .checkpoint_loader import load_from_local
from .hooks import GeneratorEMAHook
from .random_state_hook import RandomStateCheckpointHook, get_rng_state, set_rng_state
from .schedulers import CosineRestartCyclicLR

__all__ = ['CosineRestartCyclicLR', 'GeneratorEMAHook', 'RandomStateCheckpointHook',
           'get_rng_state', 'set_rng_state', 'load_from_local']
