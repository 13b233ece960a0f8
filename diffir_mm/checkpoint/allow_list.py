"""What a weights-only unpickling of a checkpoint may create besides tensors and plain data.

``torch.load(..., weights_only=True)`` rebuilds tensors, containers and numbers only. A
training checkpoint of mmengine 0.10.7 / MMagic 1.2 (``tools/train.py``'s ``iter_N.pth``)
holds a few more objects, found by saving and resuming real checkpoints
(``torch.serialization.get_unsafe_globals_in_checkpoint``, numpy 1.26, torch 2.14):

* ``message_hub.log_scalars`` holds mmengine ``HistoryBuffer`` objects; their state has numpy
  arrays (``_reconstruct``, ``ndarray``, ``dtype`` and the float64 / int64 dtype classes) and
  the statistics methods ``min`` / ``max`` / ``current`` / ``mean``, which pickle protocol 2
  stores as ``getattr(HistoryBuffer, 'mean')``;
* ``message_hub.runtime_info`` (``best_score`` of ``save_best``) and metric values hold numpy
  scalars (``multiarray.scalar``).

:data:`MMENGINE_CHECKPOINT_GLOBALS` names exactly these (numpy 2 spells ``numpy._core``; both
spellings are listed). They are allowed *by name*, so nothing of mmengine is imported to read a
checkpoint's weights:

* ``mmengine_objects=False`` (reading weights; torch only): a ``HistoryBuffer`` becomes a
  :class:`HistoryBufferState`, which keeps the buffer's pickled state and runs no code;
* ``mmengine_objects=True`` (mmengine's own loader, e.g. resuming, which needs the real
  buffers): mmengine's class, imported then.

``builtins.getattr`` is never the real ``getattr``: it is bound to :func:`restricted_getattr`,
which resolves only the statistics methods of ``HistoryBuffer`` and refuses anything else.
Everything else stays refused: a pickle that calls ``os.system`` fails to load.
"""
from __future__ import annotations

import contextlib
import pickle
from typing import Any, Callable, Iterator, List, Tuple, Union

import numpy as np
import torch

__all__ = ['MMENGINE_CHECKPOINT_GLOBALS', 'HISTORY_BUFFER', 'HistoryBufferState',
           'restricted_getattr', 'checkpoint_globals', 'allowed_globals']

SafeGlobal = Union[Callable, Tuple[Callable, str]]

#: Dotted name of mmengine's ``HistoryBuffer`` as pickles reference it.
HISTORY_BUFFER = 'mmengine.logging.history_buffer.HistoryBuffer'
#: ``HistoryBuffer`` statistics that checkpoints reference by ``getattr``.
_STATISTICS = ('min', 'max', 'current', 'mean')
#: Numpy dtype classes allowed (metric values and histories are float64 / int64; the others
#: cover float32 / int32 / bool values of user metrics).
_DTYPES = ('Float64DType', 'Float32DType', 'Int64DType', 'Int32DType', 'BoolDType')

#: Every global name a training checkpoint may reference beyond torch's own allow-list.
MMENGINE_CHECKPOINT_GLOBALS: Tuple[str, ...] = (
    HISTORY_BUFFER, 'builtins.getattr',
    'numpy.core.multiarray._reconstruct', 'numpy._core.multiarray._reconstruct',
    'numpy.core.multiarray.scalar', 'numpy._core.multiarray.scalar',
    'numpy.ndarray', 'numpy.dtype') + tuple(f'numpy.dtypes.{name}' for name in _DTYPES)


class HistoryBufferState:
    """An mmengine ``HistoryBuffer`` of a checkpoint, read without mmengine.

    Attributes:
        state: What the buffer pickled (its history and count arrays, statistics names). Reading
            weights never needs it; resuming reads the real class (``mmengine_objects=True``).
    """

    state: Any = None

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def __repr__(self) -> str:
        return 'HistoryBufferState(...)'


def _is_history_buffer_class(obj: Any) -> bool:
    return obj is HistoryBufferState or (
        isinstance(obj, type) and f'{obj.__module__}.{obj.__qualname__}' == HISTORY_BUFFER)


def restricted_getattr(obj: Any, name: Any) -> Any:
    """What ``builtins.getattr`` means while unpickling: a ``HistoryBuffer`` statistic only.

    Returns:
        The statistics method of mmengine's class, or the name ``'HistoryBuffer.<name>'`` for a
        :class:`HistoryBufferState`.

    Raises:
        pickle.UnpicklingError: Any other lookup.
    """
    if _is_history_buffer_class(obj) and isinstance(name, str) and not name.startswith('_'):
        if obj is HistoryBufferState and name in _STATISTICS:
            return f'HistoryBuffer.{name}'
        if name in set(_STATISTICS) | set(getattr(obj, '_statistics_methods', {})):
            return getattr(obj, name)
    raise pickle.UnpicklingError(f'getattr({obj!r}, {name!r}) is not allowed in checkpoints '
                                 '(only the statistics methods of HistoryBuffer are)')


def _numpy_multiarray() -> Any:
    try:
        from numpy._core import multiarray  # numpy >= 2 (numpy 1.26 forwards to numpy.core)
    except ImportError:  # pragma: no cover - numpy < 1.26
        from numpy.core import multiarray
    return multiarray


def checkpoint_globals(mmengine_objects: bool = False) -> List[SafeGlobal]:
    """``(object, name)`` entries for :func:`torch.serialization.safe_globals`, one per name of
    :data:`MMENGINE_CHECKPOINT_GLOBALS`.

    Args:
        mmengine_objects: Rebuild ``HistoryBuffer`` as mmengine's class (imports mmengine) instead
            of :class:`HistoryBufferState`.
    """
    history_buffer: type = HistoryBufferState
    if mmengine_objects:
        from mmengine.logging.history_buffer import HistoryBuffer
        history_buffer = HistoryBuffer
    multiarray = _numpy_multiarray()
    objects = {HISTORY_BUFFER: history_buffer, 'builtins.getattr': restricted_getattr,
               'numpy.ndarray': np.ndarray, 'numpy.dtype': np.dtype}
    for module in ('numpy.core.multiarray', 'numpy._core.multiarray'):
        objects[f'{module}._reconstruct'] = multiarray._reconstruct
        objects[f'{module}.scalar'] = multiarray.scalar
    for name in _DTYPES:
        objects[f'numpy.dtypes.{name}'] = getattr(np.dtypes, name)
    return [(objects[name], name) for name in MMENGINE_CHECKPOINT_GLOBALS]


def _name(entry: SafeGlobal) -> str:
    if isinstance(entry, tuple):
        return entry[1]
    return f'{entry.__module__}.{entry.__qualname__}'


@contextlib.contextmanager
def allowed_globals(mmengine_objects: bool = False) -> Iterator[None]:
    """Allow :func:`checkpoint_globals` for the ``torch.load`` calls inside the block.

    Names the process already allows (``torch.serialization.add_safe_globals`` by someone else)
    keep their objects and stay allowed after the block.
    """
    registered = {_name(entry) for entry in torch.serialization.get_safe_globals()}
    extra = [e for e in checkpoint_globals(mmengine_objects) if _name(e) not in registered]
    with torch.serialization.safe_globals(extra):
        yield
