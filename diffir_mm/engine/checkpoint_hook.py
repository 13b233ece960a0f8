"""Training checkpoints that survive a kill or a full disk at any moment of a save.

mmengine 0.10.7's ``CheckpointHook`` (i) deletes the oldest checkpoint of the rotation
(``max_keep_ckpts``) and the previous best one *before* writing the new one, (ii) writes the
checkpoint with ``open(path, 'wb')`` and the ``last_checkpoint`` pointer with ``open(path, 'w')``
(a kill leaves a truncated checkpoint or an empty pointer) and (iii) lets a full disk end the
run in a traceback that names no file, leaving the partial file behind. With
``max_keep_ckpts=1`` a kill during a save therefore loses every checkpoint of the run.

:class:`AtomicCheckpointHook` (the runtime base's ``default_hooks.checkpoint``) keeps mmengine's
options, names and schedule and changes how a save happens:

1. the checkpoint mmengine serializes is written through :class:`AtomicLocalBackend`
   (registered as mmengine file backend ``'diffir_atomic_local'``) by
   :func:`diffir_mm.checkpoint.write_serialized`, as every checkpoint of the project: a
   temporary file in the same folder, flushed, fsynced, renamed;
2. then ``last_checkpoint`` is replaced the same way;
3. only then are the checkpoints that left the rotation (or the previous best) deleted.

Before the write, the entries a tensor-only reader refuses (the ``message_hub``, with mmengine's
``HistoryBuffer`` objects and NumPy values) are packed by
:func:`diffir_mm.checkpoint.pack_entries`, so that spandrel's ``ModelLoader`` and
``torch.load(weights_only=True)`` open every ``iter_N.pth``; our loader unpacks them, so resuming
sees mmengine's entries unchanged.

A kill at any point leaves complete checkpoints only, and a pointer that names one of them
(at worst the previous one; a leftover temporary file is removed by the next run, and a kill
between 2. and 3. leaves one old checkpoint too many). A write that fails (disk full, quota,
read-only folder) stops training with one line naming the file and the free space
(:class:`~.errors.TrainingStopped`); the partial file is removed and the previous checkpoints
stay. ``--resume`` copes with pointers written by other tools, see :mod:`.resume`.
"""
from __future__ import annotations

import os
import os.path as osp
from contextlib import contextmanager
from typing import Any, Callable, Iterator, List, Union

from mmagic.registry import HOOKS
from mmengine.dist import is_main_process
from mmengine.fileio import LocalBackend, register_backend
from mmengine.hooks import CheckpointHook
from mmengine.logging import print_log

from diffir_mm.checkpoint import pack_entries, write_serialized
from diffir_mm.utils.atomic import describe_write_error, remove_stale_temps, write_bytes_atomic

from .errors import TrainingStopped

__all__ = ['ATOMIC_BACKEND', 'POINTER_NAME', 'AtomicLocalBackend', 'AtomicCheckpointHook']

#: mmengine file-backend name of :class:`AtomicLocalBackend`.
ATOMIC_BACKEND = 'diffir_atomic_local'
#: mmengine's pointer to the newest checkpoint, in the work dir (read by ``--resume``).
POINTER_NAME = 'last_checkpoint'


class AtomicLocalBackend(LocalBackend):
    """mmengine's local file backend whose writes are atomic (see the module docstring)."""

    def put(self, obj: bytes, filepath: Union[str, os.PathLike]) -> None:
        """Write ``obj`` (mmengine's serialized checkpoint) to ``filepath`` atomically."""
        write_serialized(filepath, obj)

    def put_text(self, obj: str, filepath: Union[str, os.PathLike],
                 encoding: str = 'utf-8') -> None:
        """Write the text ``obj`` to ``filepath`` atomically."""
        write_bytes_atomic(filepath, obj.encode(encoding))


register_backend(ATOMIC_BACKEND, AtomicLocalBackend, force=True)


class _DeferredRemovals:
    """A file backend whose ``remove`` / ``rmtree`` wait until :meth:`flush`."""

    def __init__(self, backend: Any) -> None:
        self._backend = backend
        self.pending: List[tuple] = []

    def remove(self, path: str) -> None:
        self.pending.append(('remove', path))

    def rmtree(self, path: str) -> None:
        self.pending.append(('rmtree', path))

    def flush(self) -> None:
        for method, path in self.pending:
            getattr(self._backend, method)(path)
        self.pending.clear()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._backend, name)


def _is_local(path: Any) -> bool:
    return path is None or '://' not in os.fspath(path)


@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """mmengine's ``CheckpointHook`` with crash-safe saves (see the module docstring).

    Takes mmengine's arguments (``interval``, ``max_keep_ckpts``, ``save_best``, ...). For a
    local ``out_dir`` (the default: the work dir) it writes through
    :class:`AtomicLocalBackend` unless ``backend_args`` names another backend; remote
    ``out_dir`` / ``file_client_args`` keep mmengine's behaviour.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._atomic = (self.file_client_args is None and self.backend_args is None
                        and _is_local(self.out_dir))
        if self._atomic:
            self.backend_args = dict(backend=ATOMIC_BACKEND)

    def before_train(self, runner) -> None:
        """mmengine's set-up, then remove temporary files of saves a kill interrupted."""
        super().before_train(runner)
        if not (self._atomic and is_main_process()):
            return
        stale = remove_stale_temps(self.out_dir)
        if osp.abspath(runner.work_dir) != osp.abspath(self.out_dir):
            stale += remove_stale_temps(runner.work_dir)
        if stale:
            print_log(f'removed {len(stale)} temporary file(s) of an interrupted save: '
                      f'{", ".join(osp.basename(p) for p in stale)}', logger='current')

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        """Pack the entries tensor-only readers refuse (local saves, which our loader reads).

        The hook's priority (``VERY_LOW``) puts this after the other hooks' additions.
        """
        if self._atomic:
            pack_entries(checkpoint)

    @contextmanager
    def _one_line_write_errors(self, name_file: Callable[[], str]) -> Iterator[None]:
        """A failed write stops training with one line: the file (``name_file()``), the reason,
        the free space, and the newest checkpoint still on disk."""
        previous = self.last_ckpt
        try:
            yield
        except OSError as err:
            path = name_file()
            kept = (f'; the previous checkpoint {previous} is intact'
                    if previous and previous != path and osp.isfile(previous) else '')
            raise TrainingStopped(describe_write_error(path, err) + kept) from None

    def _save_checkpoint_with_step(self, runner, step: int, meta: dict) -> None:
        """Write the checkpoint of ``step``, then the pointer, then drop what left the rotation.

        Args:
            runner: The runner.
            step: Iteration (or epoch) in the file name.
            meta: ``meta`` of the checkpoint.
        """
        if not self._atomic:
            return super()._save_checkpoint_with_step(runner, step, meta)
        expired = []
        if self.max_keep_ckpts > 0 and not (self.keep_ckpt_ids and
                                            self.keep_ckpt_ids[-1] == step):
            if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                expired.append(self.keep_ckpt_ids.popleft())
            self.keep_ckpt_ids.append(step)
            runner.message_hub.update_info('keep_ckpt_ids', list(self.keep_ckpt_ids))
        filename = self.filename_tmpl.format(step)
        path = self.file_backend.join_path(self.out_dir, filename)
        # the checkpoint's message hub names itself, as mmengine's does
        runner.message_hub.update_info('last_ckpt', path)
        with self._one_line_write_errors(lambda: path):
            runner.save_checkpoint(
                self.out_dir, filename, None, save_optimizer=self.save_optimizer,
                save_param_scheduler=self.save_param_scheduler, meta=meta,
                by_epoch=self.by_epoch, backend_args=self.backend_args, **self.args)
        self.last_ckpt = path
        if not is_main_process():
            return
        pointer = osp.join(runner.work_dir, POINTER_NAME)
        with self._one_line_write_errors(lambda: pointer):
            write_bytes_atomic(pointer, path.encode('utf-8'))
        for old in expired:
            old_path = self.file_backend.join_path(self.out_dir, self.filename_tmpl.format(old))
            if self.file_backend.isfile(old_path):
                self.file_backend.remove(old_path)
            elif self.file_backend.isdir(old_path):  # deepspeed saves folders
                self.file_backend.rmtree(old_path)

    def _best_paths(self) -> str:
        single = getattr(self, 'best_ckpt_path', None)
        return single or ', '.join(p for p in getattr(self, 'best_ckpt_path_dict', {}).values()
                                   if p)

    def _save_best_checkpoint(self, runner, metrics: dict) -> None:
        """mmengine's best-checkpoint logic; the previous best is deleted after the new one is
        written, and a failed write is one line."""
        if not self._atomic:
            return super()._save_best_checkpoint(runner, metrics)
        backend, self.file_backend = self.file_backend, _DeferredRemovals(self.file_backend)
        try:
            # mmengine points best_ckpt_path(_dict) at the new file before writing it
            with self._one_line_write_errors(self._best_paths):
                super()._save_best_checkpoint(runner, metrics)
            self.file_backend.flush()
        finally:
            self.file_backend = backend
