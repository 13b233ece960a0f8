"""Training hook: generator EMA that works with any DDP wrapping."""
from __future__ import annotations

from typing import Optional, Sequence, Union

import torch
from mmengine.hooks import Hook
from mmagic.registry import HOOKS

from diffir_mm.utils.wrappers import unwrap_model


@HOOKS.register_module()
class GeneratorEMAHook(Hook):
    """Exponential moving average of ``model.<key>`` into ``model.<key>_ema`` after every step.

    ``ema = ema + (param - ema) * momentum`` (momentum 0.001 is BasicSR's ``ema_decay: 0.999``);
    buffers are copied. Unlike MMagic's ``ExponentialMovingAverageHook`` it unwraps DDP on both
    sides, so it works when only the trained network is wrapped (``MMSeparateDistributed...``)
    and the frozen EMA copy is not.

    Args:
        module_keys: Names of the EMA modules (ending in ``_ema``).
        momentum: Interpolation weight of the current parameters.
        interval: Update every ``interval`` iterations.
        start_iter: Before this iteration the EMA copy just follows the weights.
    """

    priority = 'NORMAL'

    def __init__(self, module_keys: Union[str, Sequence[str]] = ('generator_ema', ),
                 momentum: float = 0.001, interval: int = 1, start_iter: int = 0) -> None:
        keys = (module_keys, ) if isinstance(module_keys, str) else tuple(module_keys)
        if not all(k.endswith('_ema') for k in keys):
            raise ValueError(f'EMA module keys must end with "_ema", got {keys}')
        if not 0 < momentum <= 1:
            raise ValueError(f'momentum must be in (0, 1], got {momentum}')
        self.module_keys = keys
        self.momentum = momentum
        self.interval = interval
        self.start_iter = start_iter

    @torch.no_grad()
    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs: Optional[dict] = None) -> None:
        if (runner.iter + 1) % self.interval:
            return
        model = unwrap_model(runner.model)
        momentum = 1.0 if runner.iter < self.start_iter else self.momentum
        for key in self.module_keys:
            ema = getattr(model, key, None)
            if ema is None:
                continue
            src = unwrap_model(getattr(model, key[:-len('_ema')]))
            ema = unwrap_model(ema)
            for p_ema, p in zip(ema.parameters(), src.parameters()):
                p_ema.lerp_(p.detach().to(p_ema.dtype), momentum)
            for b_ema, b in zip(ema.buffers(), src.buffers()):
                b_ema.copy_(b)

    def before_run(self, runner) -> None:
        model = unwrap_model(runner.model)
        for key in self.module_keys:
            if getattr(model, key, None) is None:
                raise ValueError(f'GeneratorEMAHook: the model has no "{key}" (is_use_ema=False?)')
