"""Atomic file writes: a reader sees the old file or the complete new one, never a partial one.

The data goes to a temporary file in the destination's folder (same file system, so the final
:func:`os.replace` is atomic), is flushed and fsynced, then replaces the destination. On any
failure the temporary file is removed and the destination is untouched. Images
(:func:`diffir_mm.inference.io.write_image`) and checkpoints
(:func:`diffir_mm.checkpoint.write_checkpoint`) are written through here.

Standard library only.
"""
from __future__ import annotations

import os
import tempfile
from typing import Union

__all__ = ['write_bytes_atomic']


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_bytes_atomic(path: Union[str, os.PathLike], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temporary file, flush, fsync, ``os.replace``).

    Args:
        path: Destination; its folder is created if needed. An existing file is replaced.
        data: The complete contents.

    Raises:
        OSError: The folder or file cannot be written (nothing is left behind).
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix='.' + os.path.basename(path) + '.', suffix='.tmp',
                               dir=folder)
    try:
        try:  # mkstemp creates 0600 files; give the result the usual umask-based mode
            os.fchmod(fd, 0o666 & ~_umask())
        except (AttributeError, OSError):  # pragma: no cover - e.g. Windows
            pass
        with os.fdopen(fd, 'wb') as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
