"""Atomic file writes: a reader sees the old file or the complete new one, never a partial one.

The data goes to a temporary file in the destination's folder (same file system, so the final
:func:`os.replace` is atomic), is flushed and fsynced, then replaces the destination; the folder
is fsynced too, so the rename survives a power cut. On any failure the temporary file is removed
and the destination is untouched. Images (:func:`diffir_mm.inference.io.write_image`),
checkpoints (:func:`diffir_mm.checkpoint.write_checkpoint`, training checkpoints and the
``last_checkpoint`` pointer through :mod:`diffir_mm.engine.checkpoint_hook`) and exported
graphs are written through here.

A process killed in the middle of a write cannot clean up after itself: its temporary file
(``.<name>.<pid>.<random>.tmp``, see :func:`temp_path`) stays. :func:`remove_stale_temps`
removes those whose writer no longer runs; the tools call it on the folders they write to.

Standard library only.
"""
from __future__ import annotations

import errno
import os
import re
import secrets
import shutil
from typing import List, Union

__all__ = ['write_bytes_atomic', 'replace_atomic', 'temp_path', 'remove_stale_temps',
           'free_space', 'describe_write_error']

PathLike = Union[str, os.PathLike]

#: ``.<name>.<pid>.<random>.tmp``: the writer's process id tells whether the file is stale.
_TEMP_NAME = re.compile(r'^\.(?P<name>.+)\.(?P<pid>\d+)\.[0-9a-f]{8}\.tmp$')


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def temp_path(path: PathLike) -> str:
    """A fresh temporary name beside ``path``: ``.<name>.<pid>.<random>.tmp`` (hidden, unique)."""
    path = os.fspath(path)
    folder, name = os.path.split(os.path.abspath(path))
    return os.path.join(folder, f'.{name}.{os.getpid()}.{secrets.token_hex(4)}.tmp')


def _fsync_folder(folder: str) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows cannot open folders
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some file systems refuse fsync on folders
        pass
    finally:
        os.close(fd)


def replace_atomic(tmp: PathLike, path: PathLike) -> None:
    """Move the complete file ``tmp`` (written by someone else) onto ``path`` durably.

    ``tmp`` is fsynced, renamed over ``path`` and the folder fsynced. ``tmp`` must be in the
    same folder (file system) as ``path``; on failure it is removed and ``path`` untouched.
    """
    tmp, path = os.fspath(tmp), os.fspath(path)
    try:
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        _remove_quietly(tmp)
        raise
    _fsync_folder(os.path.dirname(os.path.abspath(path)))


def _remove_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def write_bytes_atomic(path: PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temporary file, flush, fsync, ``os.replace``).

    Args:
        path: Destination; its folder is created if needed. An existing file is replaced.
        data: The complete contents.

    Raises:
        OSError: The folder or file cannot be written (nothing is left behind; see
            :func:`describe_write_error` for a one-line message).
    """
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = temp_path(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666 & ~_umask())
    try:
        with os.fdopen(fd, 'wb') as fh:
            fh.write(data)
            fh.flush()
    except BaseException:
        _remove_quietly(tmp)
        raise
    replace_atomic(tmp, path)


def _writer_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. PermissionError: a process of another user has this id
        return True
    return True


def remove_stale_temps(folder: PathLike) -> List[str]:
    """Remove the temporaries of :func:`temp_path` in ``folder`` whose writer has died.

    Temporary files and temporary folders (a model folder is written as a whole folder, see
    :func:`diffir_mm.checkpoint.write_model_folder`) are removed alike. One whose process still
    runs (on this machine) is left alone: it is being written. Other names are never touched.

    Returns:
        The paths removed (none when ``folder`` does not exist).
    """
    folder = os.fspath(folder)
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        match = _TEMP_NAME.match(entry.name)
        if not match or _writer_alive(int(match['pid'])):
            continue
        try:
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            elif entry.is_file(follow_symlinks=False):
                os.unlink(entry.path)
            else:
                continue
        except OSError:
            continue
        removed.append(entry.path)
    return removed


def free_space(path: PathLike) -> str:
    """Free space of the file system holding ``path`` (or its nearest existing parent), e.g.
    ``'1.5 MB'``; ``'unknown'`` when it cannot be queried."""
    folder = os.path.abspath(os.fspath(path))
    while folder and not os.path.exists(folder):
        parent = os.path.dirname(folder)
        if parent == folder:
            break
        folder = parent
    try:
        free = float(shutil.disk_usage(folder).free)
    except OSError:
        return 'unknown'
    for unit in ('bytes', 'KB', 'MB', 'GB'):
        if free < 1024 or unit == 'GB':
            return f'{free:.0f} {unit}' if unit == 'bytes' else f'{free:.1f} {unit}'
        free /= 1024
    return f'{free:.1f} TB'  # pragma: no cover


def describe_write_error(path: PathLike, err: OSError) -> str:
    """One line for a failed write of ``path``: the file, the reason and, when the disk is full
    or the quota exceeded, the free space left."""
    reason = err.strerror or str(err)
    text = f'cannot write {os.fspath(path)}: {reason}'
    if err.errno in (errno.ENOSPC, errno.EDQUOT):
        text += f' ({free_space(path)} free)'
    return text
