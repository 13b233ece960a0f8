"""Exact resumption: every rank's random states in every checkpoint, restored on resume.

mmengine's resume restores the weights, optimizer, schedulers, message hub and iteration, and
(for iteration-based loops) re-plays the sampler by fetching and discarding the batches that
were already trained on. It does *not* restore the global random number generators
(``random``, NumPy, torch CPU/CUDA). Models that draw noise during training (DiffIR's diffusion
forward does) or pipelines with random augmentation therefore diverge after a resume.
:class:`RandomStateCheckpointHook` fixes that:

* it stores the RNG states of every rank in every checkpoint (key ``'rng_state'``), with the
  model's own random streams (DiffIR's progressive-crop RNG);
* it isolates validation from the training random stream (the RNG states are snapshotted in
  ``before_val`` and restored in ``after_val``), so a checkpoint written before a validation run
  holds exactly the state the next training iteration starts from;
* on resume, it re-installs each rank's saved states right after mmengine has skipped the
  already-trained batches, i.e. immediately before the first new batch is fetched.

With these, an interrupted-and-resumed run is bit-identical to an uninterrupted one (on the same
hardware and number of processes, with ``randomness=dict(seed=..., deterministic=True)``). The
runtime base (``configs/_base_/default_runtime.py``) declares the hook in ``default_hooks``.
The states are tensors and Python builtins only, so they need nothing beyond the safe loader.
"""
import random
from typing import Any, Callable, Dict, List, Optional

import numpy as np
import torch
from mmagic.registry import HOOKS
from mmengine.hooks import Hook
from mmengine.logging import print_log

from diffir_mm.utils.wrappers import unwrap_model

__all__ = ['RNG_STATE_KEY', 'get_rng_state', 'set_rng_state', 'RandomStateCheckpointHook']

#: Key under which :class:`RandomStateCheckpointHook` stores RNG states.
RNG_STATE_KEY = 'rng_state'


def get_rng_state() -> Dict[str, Any]:
    """Capture the global random states of ``random``, NumPy and torch.

    The result only contains tensors and Python builtins, so it round-trips
    through ``torch.load(weights_only=True)`` without extra safe globals.

    Returns:
        dict: ``python`` (``random.getstate()``), ``numpy`` (a dict with the
        MT19937 key as an int64 tensor, ``pos``, ``has_gauss`` and
        ``cached_gaussian``), ``torch`` (CPU generator state) and, when CUDA
        has been initialised, ``cuda`` (a list of per-device states).
    """
    name, keys, pos, has_gauss, cached_gaussian = np.random.get_state()
    state: Dict[str, Any] = dict(
        python=random.getstate(),
        numpy=dict(
            bit_generator=str(name),
            keys=torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            pos=int(pos),
            has_gauss=int(has_gauss),
            cached_gaussian=float(cached_gaussian)),
        torch=torch.get_rng_state())
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Dict[str, Any]) -> None:
    """Restore random states captured by :func:`get_rng_state`.

    Tensors may come back on another device (mmengine resumes with
    ``map_location=<device>``); they are moved to the CPU first. CUDA states
    are only restored when the number of visible devices matches.

    Args:
        state (dict): The output of :func:`get_rng_state`.
    """
    if 'python' in state:
        version, internal, gauss = state['python']
        random.setstate((version, tuple(internal), gauss))
    if 'numpy' in state:
        npst = state['numpy']
        keys = torch.as_tensor(npst['keys']).cpu().numpy().astype(np.uint32)
        np.random.set_state(
            (npst['bit_generator'], keys, int(npst['pos']),
             int(npst['has_gauss']), float(npst['cached_gaussian'])))
    if 'torch' in state:
        torch.set_rng_state(torch.as_tensor(state['torch']).cpu())
    cuda_states = state.get('cuda')
    if cuda_states and torch.cuda.is_available() and \
            len(cuda_states) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([s.cpu() for s in cuda_states])


def _model_random_states(runner) -> Dict[str, Any]:
    """Random streams owned by the model (e.g. DiffIR's progressive-crop RNG), if any."""
    model = unwrap_model(getattr(runner, 'model', None))
    get = getattr(model, 'random_states', None)
    return get() if callable(get) else {}


def _capture(runner) -> Dict[str, Any]:
    """This process's global random states and the model's own streams."""
    return dict(state=get_rng_state(), model=_model_random_states(runner))


def _install(runner, entry: Dict[str, Any]) -> None:
    """Restore what :func:`_capture` returned (on the same rank)."""
    set_rng_state(entry['state'])
    if entry.get('model'):
        unwrap_model(getattr(runner, 'model', None)).load_random_states(entry['model'])


class _RestoreAfterSkip:
    """Iterator proxy: restore RNG states before the first *new* batch.

    ``IterBasedTrainLoop.run`` advances ``dataloader_iterator`` by
    ``runner.iter`` batches on resume and then fetches the next batch. The
    proxy counts those ``next`` calls; on the first call after the skip it
    restores the random states, hands the original iterator back to the loop
    and continues with it.

    Args:
        loop: The train loop whose ``dataloader_iterator`` is wrapped.
        num_skip (int): Number of batches mmengine skips.
        restore (Callable): Restores the random states.
    """

    def __init__(self, loop: Any, num_skip: int, restore: Callable[[], None]):
        self._loop = loop
        self._inner = loop.dataloader_iterator
        self._remaining = num_skip
        self._restore = restore

    def __iter__(self) -> '_RestoreAfterSkip':
        return self

    def __next__(self) -> Any:
        if self._remaining > 0:
            self._remaining -= 1
            return next(self._inner)
        self._restore()
        self._loop.dataloader_iterator = self._inner
        return next(self._inner)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


@HOOKS.register_module()
class RandomStateCheckpointHook(Hook):
    """Save every rank's random states in checkpoints and restore them on resume.

    See the module docstring for the rationale. The configs declare it (the
    runtime base has it in ``default_hooks``, key ``random_state``); its
    priority is ``VERY_HIGH`` so that the validation snapshot is taken before
    any other ``before_val`` hook runs and restored after every ``after_val``
    hook, and so that its ``after_train_iter`` runs before the
    ``CheckpointHook`` saves.

    Besides the global generators, models may own random streams: a model
    with ``random_states() -> dict`` and ``load_random_states(dict)`` (the
    DiffIR editors' progressive-crop RNG) has them stored and restored too.

    Only rank 0 writes checkpoints (``Runner.save_checkpoint`` runs on rank 0
    only), so in multi-process runs the states of all ranks are gathered
    after every training iteration and before validation (a few KB per rank);
    on resume each rank gets its own entry back. A checkpoint written with
    another number of processes leaves the freshly seeded states in place
    (with a warning).

    Args:
        isolate_val (bool): Snapshot the random states before validation and
            restore them afterwards, so validating does not perturb the
            training random stream. Required for exact resumption when a
            checkpoint is written right before a validation run.
            Defaults to True.
    """

    priority = 'VERY_HIGH'

    def __init__(self, isolate_val: bool = True) -> None:
        self.isolate_val = isolate_val
        self._val_snapshot: Optional[Dict[str, Any]] = None
        self._val_states: Optional[List[Dict[str, Any]]] = None
        self._gathered: Optional[List[Dict[str, Any]]] = None
        self._pending: Optional[Dict[str, Any]] = None

    def _all_ranks(self, runner) -> List[Dict[str, Any]]:
        """Every rank's :func:`_capture` (a collective call in distributed runs)."""
        local = _capture(runner)
        if getattr(runner, 'world_size', 1) > 1:
            from mmengine.dist import all_gather_object
            return all_gather_object(local)
        return [local]

    # --- validation isolation -------------------------------------------
    def before_val(self, runner) -> None:
        """Snapshot the training random state before validation.

        Args:
            runner (Runner): The runner.
        """
        if self.isolate_val:
            self._val_snapshot = get_rng_state()
            if runner is not None:
                self._val_states = self._all_ranks(runner)

    def after_val(self, runner) -> None:
        """Restore the training random state after validation.

        Args:
            runner (Runner): The runner.
        """
        if self._val_snapshot is not None:
            set_rng_state(self._val_snapshot)
        self._val_snapshot = self._val_states = None

    # --- saving -----------------------------------------------------------
    def after_train_iter(self, runner, batch_idx: int, data_batch: Any = None,
                         outputs: Any = None) -> None:
        """Gather all ranks' states (distributed runs only) before a checkpoint may be saved.

        Args:
            runner (Runner): The runner.
            batch_idx (int): Index of the batch.
            data_batch, outputs: Unused.
        """
        if runner.world_size > 1:
            self._gathered = self._all_ranks(runner)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        """Store the training random states of every rank in the checkpoint.

        During validation (e.g. ``save_best`` checkpoints) the snapshot taken
        before validation is stored, i.e. the training stream's state.

        Args:
            runner (Runner): The runner.
            checkpoint (dict): The checkpoint about to be saved.
        """
        if self._val_states is not None:
            states = self._val_states
        elif runner.world_size > 1 and self._gathered is not None:
            states = self._gathered
        else:
            states = [_capture(runner)]
        checkpoint[RNG_STATE_KEY] = dict(
            version=2, world_size=int(runner.world_size), states=states)

    # --- resuming -----------------------------------------------------------
    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        """Remember the stored random state until training (re)starts.

        Whether this was a resume or a plain ``load_from`` is only known once
        the train loop runs (``runner.iter`` equals the checkpoint's iter on
        resume), see :meth:`before_train_epoch`.

        Args:
            runner (Runner): The runner.
            checkpoint (dict): The loaded checkpoint.
        """
        saved = checkpoint.get(RNG_STATE_KEY)
        meta = checkpoint.get('meta', {}) or {}
        if saved is None or 'iter' not in meta:
            self._pending = None
            return
        if 'states' not in saved:  # version 1: rank 0's global states only
            saved = dict(world_size=saved.get('world_size', 1),
                         states=[dict(state=saved['state'], model={})])
        self._pending = dict(saved, iter=int(meta['iter']))

    def before_train_epoch(self, runner) -> None:
        """Install the saved random state when training was resumed.

        Args:
            runner (Runner): The runner.
        """
        pending, self._pending = self._pending, None
        if pending is None or runner.iter == 0 or \
                runner.iter != pending['iter']:
            return  # fresh run or ``load_from`` (fine-tuning)
        states = pending['states']
        if len(states) != runner.world_size:
            print_log(
                f'RandomStateCheckpointHook: the checkpoint holds the random states of '
                f'{len(states)} process(es), this run has {runner.world_size}; the random '
                'states are not restored.',
                logger='current',
                level=30)
            return
        entry = states[runner.rank]

        def restore() -> None:
            _install(runner, entry)

        loop = runner.train_loop
        if hasattr(loop, 'dataloader_iterator') and runner.iter > 0:
            # IterBasedTrainLoop skips ``runner.iter`` batches next.
            loop.dataloader_iterator = _RestoreAfterSkip(loop, runner.iter, restore)
        else:
            restore()
        print_log(
            'RandomStateCheckpointHook: random states restored from the '
            f'checkpoint of iter {pending["iter"]}.',
            logger='current')
