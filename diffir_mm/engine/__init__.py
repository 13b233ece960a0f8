"""Engine pieces: learning-rate schedulers, hooks (EMA, exact-resume random states, crash-safe
checkpoints, the non-finite guard), ``--resume``'s checkpoint choice and mmengine's local
checkpoint loader."""
from .checkpoint_hook import AtomicCheckpointHook, AtomicLocalBackend
from .checkpoint_loader import load_from_local
from .errors import TrainingStopped
from .hooks import GeneratorEMAHook
from .nonfinite_guard import NonFiniteGuardHook
from .random_state_hook import RandomStateCheckpointHook, get_rng_state, set_rng_state
from .resume import resume_checkpoint
from .schedulers import CosineRestartCyclicLR

__all__ = ['AtomicCheckpointHook', 'AtomicLocalBackend', 'CosineRestartCyclicLR',
           'GeneratorEMAHook', 'NonFiniteGuardHook', 'RandomStateCheckpointHook',
           'TrainingStopped', 'get_rng_state', 'set_rng_state', 'load_from_local',
           'resume_checkpoint']
