"""Non-finite training steps are skipped, counted and named; a run that keeps diverging stops.

Without it, one ``nan`` / ``inf`` loss or gradient is written into the weights by the optimizer
and every later step, checkpoint and EMA copy is non-finite, silently (exit status 0; with a
checkpoint rotation the good checkpoints are deleted one by one).
:class:`NonFiniteGuardHook` (the runtime base's ``default_hooks.nonfinite_guard``):

* **not applied**: before every optimizer step (a ``torch.optim`` step pre-hook on each
  optimizer of ``runner.optim_wrapper``, whatever editor calls it: ``update_params``, or the GAN
  editors' ``backward`` + ``step``), the gradients are checked; when one holds a ``nan`` /
  ``inf``, the gradients are dropped (set to None), so the step changes neither the parameters
  nor the optimizer state (Adam's moments and step count). Once a step of an iteration is
  dropped, the later ones of that iteration are dropped too (a generator step and then a
  discriminator step on its output);
* **no trace**: a skipped iteration (a dropped step, or a non-finite loss term among the
  editor's ``loss*`` outputs) restores the model's buffers (BatchNorm statistics, spectral-norm
  vectors) to their state before it, and :class:`~.hooks.GeneratorEMAHook` leaves the EMA copy
  as it was (it reads :data:`SKIPPED_ITER_KEY`). Data, random streams and the learning-rate
  schedule move on: the run equals one that left that batch out;
* **counted and named**: one warning per skipped iteration with the loss term(s) that broke
  (or the optimizer whose gradient did); the total is kept in the message hub (and so in
  checkpoints). A non-finite loss term whose gradients are all finite (a term that does not
  reach the weights) is counted and named too, but its update went ahead and the warning says
  so (the buffers and the EMA then follow the weights);
* **stop**: after ``max_consecutive`` skipped iterations in a row, training stops with one
  line naming the iteration, the term and the last checkpoint written
  (:class:`~.errors.TrainingStopped`; ``--resume`` or ``load_from`` continues from it);
* **clean checkpoints**: a checkpoint whose weights or optimizer state hold a non-finite value is
  never written (training stops with one line instead).

Mixed precision (``AmpOptimWrapper``): the loss scaler already skips steps whose scaled
gradients overflow and lowers its scale; those are normal and not counted here. A non-finite
*loss* is counted (the scaler skipped its step too). Distributed runs: gradients are identical
on every rank after DDP's all-reduce, and the skip decision of each iteration is all-reduced,
so every rank skips, counts and stops together.
"""
from __future__ import annotations

import math
import os.path as osp
from typing import Any, Dict, Iterator, List, Optional, Tuple

import torch
from mmagic.registry import HOOKS
from mmengine.hooks import Hook
from mmengine.logging import print_log

from diffir_mm.utils.wrappers import unwrap_model

from .checkpoint_hook import POINTER_NAME
from .errors import TrainingStopped

__all__ = ['SKIPPED_ITER_KEY', 'SKIP_COUNT_KEY', 'NonFiniteGuardHook', 'nonfinite_entries']

#: Message-hub runtime info: the (0-based) iteration whose update was skipped last.
SKIPPED_ITER_KEY = 'nonfinite_skipped_iter'
#: Message-hub runtime info: the number of non-finite iterations so far in this run.
SKIP_COUNT_KEY = 'nonfinite_skips'


def _wrappers(optim_wrapper: Any) -> Iterator[Tuple[str, Any]]:
    """``(name, OptimWrapper)`` of a wrapper or an ``OptimWrapperDict``."""
    if hasattr(optim_wrapper, 'optim_wrappers'):
        yield from optim_wrapper.items()
    elif optim_wrapper is not None:
        yield 'model', optim_wrapper


def _grads_finite(optimizer: torch.optim.Optimizer) -> bool:
    flags = [torch.isfinite(p.grad).all() for group in optimizer.param_groups
             for p in group['params'] if p.grad is not None]
    if not flags:
        return True
    return bool(torch.stack([f.to(flags[0].device) for f in flags]).all())


def _drop_grads(optimizer: torch.optim.Optimizer) -> None:
    for group in optimizer.param_groups:
        for p in group['params']:
            p.grad = None


def _number(value: Any) -> Optional[float]:
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return float(value.detach().float().item())
    if isinstance(value, (int, float)):
        return float(value)
    return None


def _last_checkpoint(runner) -> str:
    """The checkpoint ``last_checkpoint`` names: the newest complete one (none is written
    with non-finite values)."""
    try:
        with open(osp.join(runner.work_dir, POINTER_NAME), encoding='utf-8') as fh:
            return fh.read().strip() or 'none written yet'
    except OSError:
        return 'none written yet'


def nonfinite_entries(tree: Any, prefix: str = '') -> Iterator[str]:
    """Dotted keys of the floating tensors holding a ``nan`` / ``inf`` in a nested structure."""
    if isinstance(tree, torch.Tensor):
        if tree.is_floating_point() and not bool(torch.isfinite(tree).all()):
            yield prefix
    elif isinstance(tree, dict):
        for key, value in tree.items():
            yield from nonfinite_entries(value, f'{prefix}.{key}' if prefix else str(key))
    elif isinstance(tree, (list, tuple)):
        for index, value in enumerate(tree):
            yield from nonfinite_entries(value, f'{prefix}.{index}' if prefix else str(index))


@HOOKS.register_module()
class NonFiniteGuardHook(Hook):
    """Skip, count and name non-finite training steps; stop after too many in a row.

    See the module docstring. Priority ``HIGH``: its ``after_train_iter`` runs before the EMA
    (``NORMAL``), the logger, the LR scheduler and the checkpoint hooks.

    Args:
        max_consecutive: Stop after this many skipped iterations in a row.
        check_grads: Check the gradients before each optimizer step (False: only the loss
            terms are checked, after the step, and the step is applied).
        restore_buffers: Restore the model's buffers after a skipped iteration.
        enabled: False turns the hook off (mmengine refuses ``None`` for a default hook that is
            not one of its own, so ``default_hooks.nonfinite_guard.enabled=False`` does it).
    """

    priority = 'HIGH'

    def __init__(self, max_consecutive: int = 5, check_grads: bool = True,
                 restore_buffers: bool = True, enabled: bool = True) -> None:
        if max_consecutive < 1:
            raise ValueError(f'max_consecutive must be at least 1, got {max_consecutive}')
        self.max_consecutive = int(max_consecutive)
        self.check_grads = check_grads
        self.restore_buffers = restore_buffers
        self.enabled = enabled
        self._dropped: List[str] = []
        self._stepped: List[str] = []
        self._buffers: List[Tuple[torch.Tensor, torch.Tensor]] = []
        self._handles: list = []
        self._in_a_row = 0

    # --- set-up -----------------------------------------------------------------------------
    def before_train(self, runner) -> None:
        """Install the gradient check on every optimizer of the run."""
        for handle in self._handles:
            handle.remove()
        self._handles = []
        if self.enabled and self.check_grads:
            for name, wrapper in _wrappers(runner.optim_wrapper):
                self._handles.append(
                    wrapper.optimizer.register_step_pre_hook(self._step_check(name)))

    def after_train(self, runner) -> None:
        """Remove the gradient checks."""
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def _step_check(self, name: str):
        def check(optimizer: torch.optim.Optimizer, args: tuple, kwargs: dict) -> None:
            if self._dropped or not _grads_finite(optimizer):
                _drop_grads(optimizer)
                self._dropped.append(name)
            else:
                self._stepped.append(name)
        return check

    # --- every iteration ------------------------------------------------------------------
    def before_train_iter(self, runner, batch_idx: int, data_batch: Any = None) -> None:
        """Forget the last iteration's steps; snapshot the buffers."""
        self._dropped, self._stepped = [], []
        if self.enabled and self.restore_buffers:
            self._buffers = [(b, b.detach().clone())
                             for b in unwrap_model(runner.model).buffers()]

    def after_train_iter(self, runner, batch_idx: int, data_batch: Any = None,
                         outputs: Optional[Dict[str, Any]] = None) -> None:
        """Decide whether this iteration counts as skipped; warn, undo buffers, maybe stop."""
        if not self.enabled:
            return
        values = {key: _number(value) for key, value in (outputs or {}).items()
                  if 'loss' in key}
        terms = [f'{key} = {value}' for key, value in values.items()
                 if value is not None and not math.isfinite(value)]
        # the first optimizer dropped broke; the later ones of the iteration followed it
        grads = [f'gradient of the {name} optimizer' for name in self._dropped[:1]]
        skipped = bool(terms or grads)
        what = ', '.join(terms or grads)
        if runner.world_size > 1:
            skipped, what = self._agree(skipped, terms, grads)
        if not skipped:
            self._in_a_row = 0
            return
        # a non-finite loss term whose gradients were finite (it does not reach the weights):
        # the update went ahead (the same on every rank: the gradients are all-reduced)
        applied = not self._dropped and (bool(self._stepped) or not self.check_grads)
        if applied:
            self._count(runner, what, 'its gradients were finite, the update is applied')
            return
        if self._buffers:
            with torch.no_grad():
                for buffer, saved in self._buffers:
                    buffer.copy_(saved)
        runner.message_hub.update_info(SKIPPED_ITER_KEY, runner.iter)
        self._count(runner, what, 'the update is skipped')

    def _count(self, runner, what: str, outcome: str) -> None:
        """Count a non-finite iteration; warn with ``what`` broke and the ``outcome``, or stop
        after ``max_consecutive`` in a row."""
        self._in_a_row += 1
        total = int(runner.message_hub.get_info(SKIP_COUNT_KEY, 0)) + 1
        runner.message_hub.update_info(SKIP_COUNT_KEY, total)
        it = runner.iter + 1
        if self._in_a_row >= self.max_consecutive:
            raise TrainingStopped(
                f'iteration {it}: {self._in_a_row} non-finite steps in a row (the last: '
                f'{what}); training stopped. Last good checkpoint: {_last_checkpoint(runner)}')
        print_log(f'NonFiniteGuardHook: iteration {it}: {what}; {outcome} '
                  f'({self._in_a_row} in a row, {total} in this run)', logger='current',
                  level=30)

    @staticmethod
    def _agree(skipped: bool, terms: List[str], grads: List[str]) -> Tuple[bool, str]:
        """Every rank's decision (skip when any rank skips) and what broke: the non-finite
        loss terms with their process, else the optimizers whose gradients were dropped."""
        from mmengine.dist import all_gather_object, all_reduce

        flag = torch.tensor([1.0 if skipped else 0.0])
        all_reduce(flag, op='max')
        if not flag.item():
            return False, ''
        reports = all_gather_object((terms, grads))
        broken = [f'{", ".join(t)} on process {rank}' for rank, (t, _) in enumerate(reports)
                  if t]
        return True, '; '.join(broken) or ', '.join(
            dict.fromkeys(g for _, rank_grads in reports for g in rank_grads))

    # --- checkpoints ------------------------------------------------------------------------
    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        """Refuse to write weights or optimizer state holding a non-finite value."""
        if not self.enabled:
            return
        bad = [key for part in ('state_dict', 'optimizer')
               for key in nonfinite_entries(checkpoint.get(part), part)]
        if bad:
            more = f' and {len(bad) - 3} more' if len(bad) > 3 else ''
            raise TrainingStopped(
                f'iteration {runner.iter + 1}: the checkpoint would hold non-finite values '
                f'({", ".join(bad[:3])}{more}); it is not written. Last good checkpoint: '
                f'{_last_checkpoint(runner)}')
