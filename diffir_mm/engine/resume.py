"""``--resume``: the checkpoint to continue from, even when ``last_checkpoint`` is broken.

mmengine resumes from the file named in ``<work_dir>/last_checkpoint``. When that pointer is
empty (a kill between mmengine's truncate and write), names a missing file (deleted by a
rotation) or a file that cannot be loaded (truncated by a kill or a full disk), mmengine stops
with ``<name> can not be found`` and the run's progress looks lost, although older complete
checkpoints are usually still there. :func:`resume_checkpoint` checks the pointer's target by
loading it and otherwise picks the newest loadable ``iter_<N>.pth`` / ``epoch_<N>.pth`` of the
work dir (and of the pointer's folder), saying so in one line. With unreadable checkpoints
only, it stops with one line listing them rather than starting over beside them.
:class:`~.checkpoint_hook.AtomicCheckpointHook` never leaves such files; this covers pointers
and checkpoints written by older versions, other tools or a damaged disk.
"""
from __future__ import annotations

import os
import os.path as osp
import re
from typing import Callable, List, Optional, Tuple

from diffir_mm.checkpoint import read_checkpoint

from .checkpoint_hook import POINTER_NAME
from .errors import TrainingStopped

__all__ = ['checkpoint_problem', 'resume_checkpoint']

#: Names of mmengine's periodic checkpoints (``filename_tmpl`` defaults).
_PERIODIC = re.compile(r'^(?:iter|epoch)_(\d+)\.pth$')


def checkpoint_problem(path: str) -> Optional[str]:
    """Why training cannot resume from ``path`` (one short phrase), or None when it can."""
    if not osp.isfile(path):
        return 'no such file'
    if osp.getsize(path) == 0:
        return 'empty file'
    try:
        ckpt = read_checkpoint(path)
    except Exception as err:  # noqa: BLE001 - every reason to refuse is reported
        text = str(err)
        if 'PytorchStreamReader' in text:  # torch's words for a cut-off zip archive
            return 'truncated or corrupt file'
        return text.split(': ', 1)[1] if text.startswith('cannot read checkpoint') else text
    if not isinstance(ckpt.get('state_dict'), dict) or 'iter' not in (ckpt.get('meta') or {}):
        return 'not a training checkpoint (no state_dict / meta.iter)'
    return None


def _periodic_checkpoints(folders: List[str]) -> List[Tuple[int, str]]:
    """``(number, path)`` of the ``iter_<N>.pth`` / ``epoch_<N>.pth`` files, newest first."""
    found = {}
    for folder in folders:
        try:
            names = os.listdir(folder)
        except OSError:
            continue
        for name in names:
            match = _PERIODIC.match(name)
            if match:
                path = osp.abspath(osp.join(folder, name))
                found[path] = int(match.group(1))
    return sorted(((n, p) for p, n in found.items()), reverse=True)


def _read_pointer(pointer: str) -> Optional[str]:
    try:
        with open(pointer, encoding='utf-8') as fh:
            return fh.read().strip()
    except (OSError, UnicodeDecodeError):
        return None


def resume_checkpoint(work_dir: str, log: Callable[[str], None] = print) -> Optional[str]:
    """The checkpoint ``--resume`` continues from, or None to start from scratch.

    Args:
        work_dir: The run's work dir (holding ``last_checkpoint``).
        log: Receives the one line said when the pointer is not followed.

    Returns:
        The pointer's target when it loads; otherwise the newest loadable periodic checkpoint;
        None when the work dir holds no checkpoint at all (said in one line).

    Raises:
        TrainingStopped: Checkpoints exist but none can be loaded (they are listed).
    """
    pointer = osp.join(work_dir, POINTER_NAME)
    target = _read_pointer(pointer) if osp.exists(pointer) else None
    if target:
        problem = checkpoint_problem(target)
        if problem is None:
            return target
        why = f'{POINTER_NAME} names {target}, which cannot be loaded ({problem})'
    elif target is None and not osp.exists(pointer):
        why = f'there is no {POINTER_NAME}'
    else:
        why = f'{POINTER_NAME} is empty'
    folders = [work_dir] + ([osp.dirname(target)] if target else [])
    unusable = []
    for _, path in _periodic_checkpoints(folders):
        if target and osp.abspath(path) == osp.abspath(target):
            continue
        problem = checkpoint_problem(path)
        if problem is None:
            skipped = f' (skipped: {"; ".join(unusable)})' if unusable else ''
            log(f'--resume: {why}; resuming from {path}, the newest loadable checkpoint'
                f'{skipped}')
            return path
        unusable.append(f'{osp.basename(path)}: {problem}')
    if not unusable and not target:  # a first run (or one killed before its first save)
        log(f'--resume: {why} and {work_dir} holds no checkpoint; training starts from scratch')
        return None
    found = '; '.join(([why] if target else []) + unusable)
    raise TrainingStopped(f'--resume: no loadable checkpoint in {work_dir} ({found}); move '
                          'these files away to start from scratch')
