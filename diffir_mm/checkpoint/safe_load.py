"""Opening checkpoint files safely: the one place where a checkpoint file is deserialised.

* ``.safetensors``: read with the ``safetensors`` package, no unpickling at all. A file written
  by :func:`~diffir_mm.checkpoint.write_checkpoint` carries its ``meta`` in the header and reads
  back as ``{'state_dict': ..., 'meta': ...}``; any other is a bare state dict.
* A model folder (:mod:`.folder`): its ``model.safetensors``, read as above, with what
  ``config.json`` says added to ``meta['diffir_mm']`` (checked against the header here and
  against the weights by :func:`~.formats.read_components`).
* Anything else (``.pth``, ``.ckpt``, ``.pt``): ``torch.load(..., weights_only=True)``, always,
  with the names of :mod:`.allow_list` allowed (mmengine training checkpoints), nothing else;
  entries packed by :mod:`.packing` are read back the same way.

Every failure is one line: :class:`FileNotFoundError` for a missing file,
:class:`~diffir_mm.checkpoint.CheckpointMismatchError` for a file that is not a checkpoint or
that asks for anything the safe unpickler refuses (the message names the refused global, e.g.
``posix.system``).
"""
from __future__ import annotations

import json
import os
import re
from typing import Any, Callable, Dict, Mapping, Union

import torch

from .allow_list import allowed_globals
from .errors import CheckpointMismatchError
from .folder import fill_generators, folder_claims, weights_file
from .packing import unpack_entries

__all__ = ['SAFETENSORS_META_KEY', 'load_file', 'read_checkpoint', 'load_state_dict_file']

PathLike = Union[str, os.PathLike]
MapLocation = Union[str, torch.device, Callable, None]
#: Header entry of our ``.safetensors`` files holding ``meta`` as JSON.
SAFETENSORS_META_KEY = 'diffir_mm_meta'


def _reason(err: BaseException) -> str:
    """One line saying why a file could not be unpickled."""
    text = str(err)
    refused = re.search(r'GLOBAL (\S+)', text)
    if refused:
        return (f'it refers to {refused.group(1)}, which safe loading refuses (only tensors and '
                'plain data are read; the file may be unsafe)')
    # torch's own paragraphs (which suggest weights_only=False) are left out
    paragraphs = [' '.join(part.split()) for part in re.split(r'\n\s*\n', text)]
    detail = ' '.join(part for part in paragraphs if part and 'weights_only' not in part
                      and not part.startswith('Check the documentation')) or ' '.join(text.split())
    return f'not a readable checkpoint ({type(err).__name__}: {detail})'


def _load_safetensors(path: str, map_location: MapLocation) -> Dict[str, Any]:
    from safetensors import safe_open

    device = str(map_location) if isinstance(map_location, (str, torch.device)) else 'cpu'
    with safe_open(path, framework='pt', device=device) as f:
        tensors = {key: f.get_tensor(key) for key in f.keys()}
        header = f.metadata() or {}
    if SAFETENSORS_META_KEY in header:
        return {'state_dict': tensors, 'meta': json.loads(header[SAFETENSORS_META_KEY])}
    return tensors


def _load_folder(folder: str, map_location: MapLocation) -> Dict[str, Any]:
    loaded = _load_safetensors(weights_file(folder), map_location)
    if 'state_dict' not in loaded:  # a bare state dict: only config.json says what it is
        loaded = {'state_dict': loaded, 'meta': {}}
    meta = loaded['meta'] if isinstance(loaded['meta'], dict) else {}
    header = meta.get('diffir_mm') if isinstance(meta.get('diffir_mm'), dict) else {}
    return {'state_dict': fill_generators(loaded['state_dict']),
            'meta': dict(meta, diffir_mm=folder_claims(folder, header))}


def load_file(path: PathLike, map_location: MapLocation = 'cpu',
              mmengine_objects: bool = False) -> Any:
    """Deserialise a checkpoint file safely.

    Args:
        path: ``.safetensors``, a ``torch.save`` file (``.pth`` / ``.ckpt`` / ...), or a model
            folder (``model.safetensors`` + ``config.json``).
        map_location: As :func:`torch.load`.
        mmengine_objects: Rebuild mmengine's ``HistoryBuffer`` objects (imports mmengine; only
            mmengine's own loader needs them) instead of
            :class:`~diffir_mm.checkpoint.allow_list.HistoryBufferState`.

    Raises:
        FileNotFoundError: No such file (or a folder without ``model.safetensors``).
        CheckpointMismatchError: Unreadable, refused by the safe unpickler, or a model folder
            whose ``config.json`` and header disagree (one line).
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        weights_file(path)  # a folder without weights: FileNotFoundError
    elif not os.path.isfile(path):
        raise FileNotFoundError(f'checkpoint not found: {path}')
    try:
        if os.path.isdir(path):
            return _load_folder(path, map_location)
        if path.lower().endswith('.safetensors'):
            return _load_safetensors(path, map_location)
        with allowed_globals(mmengine_objects):
            return unpack_entries(
                torch.load(path, map_location=map_location, weights_only=True),
                lambda entry: torch.load(entry, map_location=map_location, weights_only=True))
    except CheckpointMismatchError:
        raise
    except Exception as err:  # noqa: BLE001 - every reading failure is reported in one line
        raise CheckpointMismatchError(f'cannot read checkpoint {path}: {_reason(err)}') from None


def read_checkpoint(source: Union[PathLike, Mapping[str, Any]],
                    mmengine_objects: bool = False) -> Mapping[str, Any]:
    """A checkpoint dictionary: :func:`load_file` of a path, or a mapping passed through.

    Raises:
        FileNotFoundError, CheckpointMismatchError: As :func:`load_file`, or the file holds
            something other than a dictionary.
    """
    if isinstance(source, Mapping):
        return source
    loaded = load_file(source, mmengine_objects=mmengine_objects)
    if not isinstance(loaded, Mapping):
        raise CheckpointMismatchError(f'{os.fspath(source)} is not a checkpoint dictionary')
    return loaded


def load_state_dict_file(path: PathLike, what: str) -> Dict[str, torch.Tensor]:
    """The state dict of a local weights file (feature networks of losses and metrics).

    ``{'state_dict': ...}``, ``{'params': ...}`` and ``{'model': ...}`` wrappers are unwrapped.
    Nothing is downloaded: a missing file raises.

    Args:
        path: A ``.pth`` / ``.pt`` / ``.safetensors`` file.
        what: What the file is, for messages (``'VGG19 weights'``).

    Raises:
        FileNotFoundError, CheckpointMismatchError: Missing, unreadable or not a state dict.
    """
    if not os.path.isfile(os.fspath(path)):
        raise FileNotFoundError(f'{what} not found: {os.fspath(path)!r}. diffir_mm never '
                                'downloads weights; put the file there or point the config at it.')
    state: Any = load_file(path)
    for key in ('state_dict', 'params', 'model'):
        if isinstance(state, Mapping) and isinstance(state.get(key), Mapping):
            state = state[key]
    if not isinstance(state, Mapping):
        raise CheckpointMismatchError(f'{what} {os.fspath(path)!r} is not a state dict '
                                      f'(got {type(state).__name__})')
    return dict(state)
