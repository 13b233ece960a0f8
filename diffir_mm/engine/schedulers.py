"""Learning-rate schedulers of the official DiffIR recipes that mmengine lacks."""
from __future__ import annotations

import math
from typing import List, Sequence

from mmengine.optim.scheduler.lr_scheduler import LRSchedulerMixin
from mmengine.optim.scheduler.param_scheduler import INF, _ParamScheduler
from mmagic.registry import PARAM_SCHEDULERS


class CosineRestartCyclicParamScheduler(_ParamScheduler):
    """Cosine annealing in consecutive cycles, each restarting from ``weight * base``.

    In cycle ``i`` (length ``periods[i]``, starting at step ``s_i``) the value is
    ``eta_min_i + (w_i * base - eta_min_i) * (1 + cos(pi * (t - s_i) / periods[i])) / 2``.
    ``eta_min`` may exceed the base value, giving a cosine warm-up (the official deblurring
    stage 1 rises from 2e-4 to 2.85e-4 over its first cycle).

    Args:
        optimizer: Wrapped optimizer.
        param_name: Scheduled parameter.
        periods: Cycle lengths in steps.
        restart_weights: Multiplier of the base value at each restart.
        eta_mins: Value reached at the end of each cycle.
    """

    def __init__(self, optimizer, param_name: str, periods: Sequence[int],
                 restart_weights: Sequence[float] = (1,), eta_mins: Sequence[float] = (0,),
                 begin: int = 0, end: int = INF, last_step: int = -1, by_epoch: bool = False,
                 verbose: bool = False) -> None:
        if not len(periods) == len(restart_weights) == len(eta_mins):
            raise ValueError('periods, restart_weights and eta_mins must have the same length')
        self.periods = list(periods)
        self.restart_weights = list(restart_weights)
        self.eta_mins = list(eta_mins)
        super().__init__(optimizer, param_name, begin=begin, end=end, last_step=last_step,
                         by_epoch=by_epoch, verbose=verbose)

    def _cycle(self, step: int):
        start = 0
        for i, period in enumerate(self.periods):
            if step < start + period or i == len(self.periods) - 1:
                return i, min(step - start, period)
            start += period
        raise AssertionError('unreachable')

    def _get_value(self) -> List[float]:
        i, t = self._cycle(max(self.last_step, 0))
        cos = (1 + math.cos(math.pi * t / self.periods[i])) / 2
        return [self.eta_mins[i] + (self.restart_weights[i] * base - self.eta_mins[i]) * cos
                for base in self.base_values]


@PARAM_SCHEDULERS.register_module()
class CosineRestartCyclicLR(LRSchedulerMixin, CosineRestartCyclicParamScheduler):
    """Learning-rate version of :class:`CosineRestartCyclicParamScheduler`."""
