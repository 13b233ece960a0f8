"""The one exception that stops a training run with a one-line reason.

Raised by the reliability pieces of the engine and the data pipeline: repeated non-finite steps
(:mod:`.nonfinite_guard`), a checkpoint that cannot be written (:mod:`.checkpoint_hook`), no
loadable checkpoint to resume from (:mod:`.resume`), unreadable training images
(:mod:`diffir_mm.datasets.transforms.checked_loading`). ``tools/train.py`` prints it as one
``error:`` line with exit status 1 (:func:`diffir_mm.utils.config_errors.explain`).
"""
from __future__ import annotations

__all__ = ['TrainingStopped']

_WORKER_TRACEBACK = 'Original Traceback'


class TrainingStopped(RuntimeError):
    """Training cannot go on; the message is one line for the user.

    A PyTorch ``DataLoader`` worker re-raises its exception in the main process as
    ``TrainingStopped(<worker traceback>)``; the message is then the traceback's last line, so
    the error stays one line whichever process raised it.
    """

    def __init__(self, message: str) -> None:
        text = str(message)
        if _WORKER_TRACEBACK in text:
            last = text.strip().splitlines()[-1]
            prefix = f'{type(self).__name__}: '
            text = last.split(prefix, 1)[1] if prefix in last else last
        super().__init__(text)
