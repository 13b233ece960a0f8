"""The one error of the checkpoint package: a file that cannot be used, said in one line."""
from __future__ import annotations

__all__ = ['CheckpointMismatchError']


class CheckpointMismatchError(ValueError):
    """A checkpoint is unreadable or unsafe, or does not fit the requested task / scale / stage /
    architecture. The message is one line naming the file and what is wrong."""
