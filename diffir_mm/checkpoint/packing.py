"""Training checkpoints that tensor-only readers can open.

A training checkpoint of mmengine 0.10.7 holds, besides weights and optimizer state, objects no
tensor-only reader creates: the ``message_hub``'s ``HistoryBuffer`` objects with their NumPy
arrays, and NumPy scalars in its ``runtime_info``. spandrel's own reader
(``spandrel.ModelLoader.load_from_file``, used by chaiNNer) rebuilds only ``OrderedDict``,
tensors and plain data, so it refused every ``iter_N.pth`` (``Global
'mmengine.logging.history_buffer.HistoryBuffer' is forbidden``), and so did
``torch.load(weights_only=True)`` without our allow-list (ComfyUI's reader).

:func:`pack_entries` therefore stores each top-level entry that is not plain data as one
``int32`` tensor holding the entry's own ``torch.save`` bytes, under a marker dict
(:data:`PACKED_KEY`). ``state_dict`` is never packed: the weights stay where every reader looks.
:func:`unpack_entries` (called by :func:`~.safe_load.load_file`, so every reader of the project
and mmengine's loader see the original entries) reads each packed entry back with the same
weights-only unpickler and allow-list as the file itself: packing hides nothing from the safety
check. Files without packed entries read as before.
"""
from __future__ import annotations

import io
from collections import OrderedDict
from typing import Any, Callable, Dict, List, MutableMapping

import numpy as np
import torch

__all__ = ['PACKED_KEY', 'PLAIN_TENSOR_DTYPES', 'is_plain', 'pack_entries', 'unpack_entries']

#: Key of the marker dict that replaces a packed entry (its value: the packing version).
PACKED_KEY = '__diffir_mm_packed__'
_VERSION = 1
#: Tensor types saved with ``torch._utils._rebuild_tensor_v2`` and a typed storage, whose names
#: ``torch.load`` resolves itself; spandrel's unpickler allows that function (torch 2.14 saves
#: float8 and the unsigned 16-64 bit types with ``_rebuild_tensor_v3``, which it refuses).
PLAIN_TENSOR_DTYPES = frozenset({
    torch.bool, torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64, torch.float16,
    torch.bfloat16, torch.float32, torch.float64, torch.complex64, torch.complex128})
#: The packed bytes are little-endian ``int32`` words on every machine.
_WORD = np.dtype('<i4')


def is_plain(value: Any) -> bool:
    """Whether ``value`` pickles with nothing but plain data, ``OrderedDict`` and plain tensors.

    Plain data is ``None``, ``bool``, ``int``, ``float``, ``str`` and lists, tuples and dicts
    (``dict`` or ``OrderedDict``, not other subclasses) of plain data; a plain tensor is a
    dense, non-quantized ``torch.Tensor`` (not a subclass such as ``Parameter``) of a
    :data:`PLAIN_TENSOR_DTYPES` type without Python attributes.
    """
    if value is None or type(value) in (bool, int, float, str):
        return True
    if type(value) in (list, tuple):
        return all(is_plain(item) for item in value)
    if type(value) in (dict, OrderedDict):
        return all(is_plain(key) and is_plain(item) for key, item in value.items())
    if type(value) is torch.Tensor:
        return (value.layout == torch.strided and value.dtype in PLAIN_TENSOR_DTYPES
                and not value.is_quantized and not value.__dict__)
    return False


def _packed(value: Any) -> Dict[str, Any]:
    buffer = io.BytesIO()
    torch.save(value, buffer)
    raw = buffer.getvalue()
    padded = raw + b'\0' * (-len(raw) % _WORD.itemsize)
    words = torch.from_numpy(np.frombuffer(padded, dtype=_WORD).astype(np.int32))
    return {PACKED_KEY: _VERSION, 'num_bytes': len(raw), 'data': words}


def _is_packed(value: Any) -> bool:
    return isinstance(value, dict) and PACKED_KEY in value


def pack_entries(checkpoint: MutableMapping[str, Any]) -> List[str]:
    """Replace, in place, every top-level entry but ``state_dict`` that is not plain data.

    Args:
        checkpoint: The dictionary about to be saved (mmengine's ``before_save_checkpoint``).

    Returns:
        The packed keys, e.g. ``['message_hub']``.
    """
    keys = [key for key, value in checkpoint.items()
            if key != 'state_dict' and not _is_packed(value) and not is_plain(value)]
    for key in keys:
        checkpoint[key] = _packed(checkpoint[key])
    return keys


def unpack_entries(loaded: Any, load_bytes: Callable[[io.BytesIO], Any]) -> Any:
    """``loaded`` with each packed top-level entry read back by ``load_bytes``.

    Args:
        loaded: What a file held (anything; only a dictionary can hold packed entries).
        load_bytes: Reads one entry's ``torch.save`` bytes; the caller's safe ``torch.load``.

    Raises:
        ValueError: A packed entry of an unknown version or whose bytes are cut short.
    """
    if not isinstance(loaded, MutableMapping):
        return loaded
    for key, value in list(loaded.items()):
        if not _is_packed(value):
            continue
        if value[PACKED_KEY] != _VERSION:
            raise ValueError(f'entry {key!r} is packed by a newer diffir_mm '
                             f'(version {value[PACKED_KEY]})')
        words = value['data']
        raw = words.numpy().astype(_WORD).tobytes()
        if not 0 <= value['num_bytes'] <= len(raw):
            raise ValueError(f'entry {key!r} is cut short')
        loaded[key] = load_bytes(io.BytesIO(raw[:value['num_bytes']]))
    return loaded
