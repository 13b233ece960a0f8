"""Writing checkpoints: the one mmengine layout our configs load, written atomically.

:func:`mmengine_checkpoint` lays networks out as our editors load them (``generator.*``,
``generator_ema.*``, ``teacher.*`` + ``meta['diffir_mm']``); :func:`save_file` writes any
checkpoint dictionary as ``.pth`` (``torch.save``) or ``.safetensors`` (tensors + ``meta`` as
JSON in the header, read back by :func:`~.safe_load.load_file`), always through
:func:`diffir_mm.utils.atomic.write_bytes_atomic` (temporary file in the same folder, fsync,
``os.replace``; nothing partial is ever left). :func:`write_checkpoint` does both.
"""
from __future__ import annotations

import io
import json
import os
from typing import Any, Dict, Mapping, Optional, Union

import torch

from diffir_mm.utils.atomic import write_bytes_atomic

from .layouts import NetworkCheckpoint
from .safe_load import SAFETENSORS_META_KEY

__all__ = ['mmengine_checkpoint', 'save_file', 'write_checkpoint']


def mmengine_checkpoint(networks: Mapping[str, NetworkCheckpoint],
                        meta: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
    """The mmengine checkpoint our editors load: ``{'state_dict': ..., 'meta': {'diffir_mm'}}``.

    Args:
        networks: ``'generator'`` and/or ``'generator_ema'`` (at least one), optional
            ``'teacher'`` -- as :func:`~.formats.read_components` returns them. A missing EMA
            copy is the generator itself (an EMA that has not moved yet) and vice versa, so that
            evaluation, which uses ``generator_ema``, never runs a random initialisation.
        meta: Extra ``meta['diffir_mm']`` entries; the sources of every part are added.
    """
    generator = networks.get('generator') or networks.get('generator_ema')
    if generator is None:
        raise ValueError('mmengine_checkpoint needs a generator or generator_ema network')
    parts = {'generator': generator,
             'generator_ema': networks.get('generator_ema') or generator}
    if networks.get('teacher') is not None:
        parts['teacher'] = networks['teacher']
    state = {f'{prefix}.{k}': v.detach().clone().contiguous()
             for prefix, ckpt in parts.items() for k, v in ckpt.state.items()}
    info = dict(meta or {})
    info.update({f'{prefix}_from': ckpt.source for prefix, ckpt in parts.items()})
    return {'state_dict': state, 'meta': {'diffir_mm': info}}


def _safetensors_bytes(ckpt: Mapping[str, Any]) -> bytes:
    from safetensors.torch import save

    if isinstance(ckpt.get('state_dict'), Mapping):
        tensors, header = ckpt['state_dict'], {
            SAFETENSORS_META_KEY: json.dumps(ckpt.get('meta', {}), default=str)}
    else:
        tensors, header = ckpt, {}
    if not all(isinstance(v, torch.Tensor) for v in tensors.values()):
        raise ValueError('a .safetensors file holds tensors only (a state dict, or '
                         "{'state_dict': tensors, 'meta': ...})")
    unshared, storages = {}, set()
    for key, value in tensors.items():  # safetensors stores no aliases: copy repeated storages
        value = value.detach().contiguous()
        if value.untyped_storage().data_ptr() in storages:
            value = value.clone()
        storages.add(value.untyped_storage().data_ptr())
        unshared[key] = value
    return save(unshared, metadata=dict(header, format='pt'))


def save_file(ckpt: Mapping[str, Any], path: Union[str, os.PathLike],
              overwrite: bool = False) -> None:
    """Write a checkpoint dictionary atomically, ``.safetensors`` by extension, else ``.pth``.

    Raises:
        FileExistsError: ``path`` exists and ``overwrite`` is False.
        OSError: The file cannot be written (the destination is left as it was).
    """
    path = os.fspath(path)
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f'{path} exists; not overwritten')
    if path.lower().endswith('.safetensors'):
        data = _safetensors_bytes(ckpt)
    else:
        buffer = io.BytesIO()
        torch.save(dict(ckpt), buffer)
        data = buffer.getvalue()
    write_bytes_atomic(path, data)


def write_checkpoint(path: Union[str, os.PathLike], networks: Mapping[str, NetworkCheckpoint],
                     meta: Optional[Mapping[str, Any]] = None,
                     overwrite: bool = False) -> Dict[str, Any]:
    """Write :func:`mmengine_checkpoint` of ``networks`` with :func:`save_file`.

    Returns:
        The checkpoint written.

    Raises:
        FileExistsError: ``path`` exists and ``overwrite`` is False.
    """
    if os.path.exists(os.fspath(path)) and not overwrite:
        raise FileExistsError(f'{os.fspath(path)} exists; not overwritten')
    ckpt = mmengine_checkpoint(networks, meta)
    save_file(ckpt, path, overwrite=True)
    return ckpt
