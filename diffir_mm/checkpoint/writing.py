"""Writing checkpoints: the one mmengine layout our configs load, written atomically.

:func:`mmengine_checkpoint` lays networks out as our editors load them (``generator.*``,
``generator_ema.*``, ``teacher.*`` + ``meta['diffir_mm']``); :func:`save_file` writes any
checkpoint dictionary as ``.pth`` (``torch.save``) or ``.safetensors`` (tensors + ``meta`` as
JSON in the header, read back by :func:`~.safe_load.load_file`). :func:`write_checkpoint` does
both; :func:`write_model_folder` writes a model folder (weights, config, card) with one rename.
Every checkpoint file -- these, and the training checkpoints mmengine serializes itself
(:mod:`diffir_mm.engine.checkpoint_hook`) -- reaches the disk through :func:`write_serialized`:
:func:`diffir_mm.utils.atomic.write_bytes_atomic` (temporary file in the same folder, fsync,
``os.replace``; nothing partial is ever left).
"""
from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
from typing import Any, Dict, Mapping, Optional, Union

import torch

from diffir_mm.utils.atomic import remove_stale_temps, temp_path, write_bytes_atomic

from .folder import (CARD_FILE, CONFIG_FILE, FOLDER_FORMAT, FOLDER_FORMAT_VERSION, MODEL_FILE,
                     file_sha256, is_model_folder)
from .layouts import NetworkCheckpoint
from .safe_load import SAFETENSORS_META_KEY

__all__ = ['mmengine_checkpoint', 'save_file', 'write_checkpoint', 'folder_config',
           'write_model_folder', 'write_serialized']


def mmengine_checkpoint(networks: Mapping[str, NetworkCheckpoint],
                        meta: Optional[Mapping[str, Any]] = None,
                        fill_ema: bool = True) -> Dict[str, Any]:
    """The mmengine checkpoint our editors load: ``{'state_dict': ..., 'meta': {'diffir_mm'}}``.

    Args:
        networks: ``'generator'`` and/or ``'generator_ema'`` (at least one), optional
            ``'teacher'`` -- as :func:`~.formats.read_components` returns them.
        meta: Extra ``meta['diffir_mm']`` entries; the sources of every part are added.
        fill_ema: Store a missing EMA copy as the generator itself (an EMA that has not moved
            yet) and vice versa, so that evaluation, which uses ``generator_ema``, never runs a
            random initialisation. A model folder stores each network once (False) and its
            reader fills them in (:func:`~.folder.fill_generators`).
    """
    parts = {name: networks[name] for name in ('generator', 'generator_ema', 'teacher')
             if networks.get(name) is not None}
    if 'generator' not in parts and 'generator_ema' not in parts:
        raise ValueError('mmengine_checkpoint needs a generator or generator_ema network')
    if fill_ema:
        parts.setdefault('generator', parts.get('generator_ema'))
        parts.setdefault('generator_ema', parts['generator'])
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


def write_serialized(path: Union[str, os.PathLike], data: bytes) -> None:
    """Write a serialized checkpoint (``.pth`` / ``.safetensors`` bytes) to ``path`` atomically,
    replacing an existing file.

    Raises:
        OSError: The file cannot be written (the destination is left as it was, no partial file;
            :func:`diffir_mm.utils.atomic.describe_write_error` makes it one line).
    """
    write_bytes_atomic(path, data)


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
    write_serialized(path, data)


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


def folder_config(networks: Mapping[str, NetworkCheckpoint],
                  source: Optional[Union[str, os.PathLike]] = None,
                  model: Optional[str] = None) -> Dict[str, Any]:
    """The ``config.json`` of a model folder holding ``networks``.

    Everything but the provenance is read from the weights (EMA preferred): task, stage,
    scale, ``big``, the architecture arguments (:func:`~.infer.infer_arch_kwargs`) and the
    parameter count; ``source`` adds the file name and SHA-256, ``model`` the metafile entry.
    """
    from diffir_mm import __version__
    from diffir_mm.archs import DiffIRS1Net, DiffIRS2Net

    from .formats import is_big_inpainting

    main = networks.get('generator_ema') or networks.get('generator')
    if main is None:
        raise ValueError('a model folder needs a generator or generator_ema network')
    kwargs = main.arch_kwargs()
    layout = main.layout
    net_class = DiffIRS2Net if layout.stage == 2 else DiffIRS1Net
    parameters = sum(v.numel() for v in main.state.values())  # no buffers in our state dicts
    source_info = None
    if source is not None:
        source_info = dict(file=os.path.basename(os.fspath(source)),
                           sha256=file_sha256(os.fspath(source)))
    return dict(format=FOLDER_FORMAT, format_version=FOLDER_FORMAT_VERSION,
                architecture=net_class.__name__, task=layout.task, stage=layout.stage,
                scale=layout.scale, big=is_big_inpainting(kwargs),
                arch_kwargs=json.loads(json.dumps(kwargs)), parameters=parameters,
                components=sorted(k for k, v in networks.items() if v is not None),
                source=source_info, model=model, diffir_mm_version=__version__)


def _replace_folder(tmp: str, folder: str) -> None:
    """Move the finished ``tmp`` to ``folder``, replacing an earlier model folder there."""
    if not os.path.exists(folder):
        os.rename(tmp, folder)
        return
    old = tempfile.mkdtemp(prefix=f'.{os.path.basename(folder)}.', suffix='.old',
                           dir=os.path.dirname(folder))
    os.rename(folder, os.path.join(old, 'folder'))
    try:
        os.rename(tmp, folder)
    except BaseException:
        os.rename(os.path.join(old, 'folder'), folder)  # put the earlier folder back
        raise
    shutil.rmtree(old, ignore_errors=True)


def write_model_folder(folder: Union[str, os.PathLike],
                       networks: Mapping[str, NetworkCheckpoint],
                       meta: Optional[Mapping[str, Any]] = None,
                       source: Optional[Union[str, os.PathLike]] = None,
                       model: Optional[str] = None,
                       overwrite: bool = False) -> Dict[str, Any]:
    """Write a model folder: ``model.safetensors``, ``config.json`` and the card ``README.md``.

    The files are written into a temporary folder beside ``folder`` and moved there with one
    rename, so a reader sees no folder or a complete one.

    Args:
        folder: The folder to create.
        networks: As :func:`mmengine_checkpoint`.
        meta: Extra ``meta['diffir_mm']`` entries of the weights file (the converter's).
        source: The file the networks were read from (its name and SHA-256 are recorded).
        model: The ``configs/metafile.yml`` entry the weights are (for the card); by default the
            card finds it from the source file's name, or lists the candidates.
        overwrite: Replace an existing model folder. Anything else at ``folder`` (a file, a
            folder of other things) is never replaced.

    Returns:
        The ``config.json`` written.

    Raises:
        FileExistsError: ``folder`` exists (and ``overwrite`` is False, or it is not a model
            folder).
        ValueError: ``model`` is not a metafile entry of this network.
    """
    from .card import choose_release, releases, render_card

    folder = os.path.abspath(os.fspath(folder))
    if os.path.lexists(folder):
        if not overwrite:
            raise FileExistsError(f'{folder} exists; not overwritten')
        if not is_model_folder(folder):
            raise FileExistsError(f'{folder} exists and is not a diffir-mm model folder; not '
                                  'replaced')
    config = folder_config(networks, source, model)
    release = choose_release(config, releases(config), model)
    config['model'] = release['Name'] if release else None
    claims = {k: config[k] for k in ('task', 'stage', 'scale', 'big', 'arch_kwargs')}
    weights = _safetensors_bytes(mmengine_checkpoint(networks, dict(meta or {}, **claims),
                                                     fill_ema=False))
    card = render_card(config, os.path.basename(folder))
    parent = os.path.dirname(folder)
    os.makedirs(parent, exist_ok=True)
    remove_stale_temps(parent)  # the temporaries of a writer killed earlier
    tmp = temp_path(folder)
    os.mkdir(tmp)
    try:
        write_serialized(os.path.join(tmp, MODEL_FILE), weights)
        write_bytes_atomic(os.path.join(tmp, CONFIG_FILE),
                           (json.dumps(config, indent=2) + '\n').encode('utf-8'))
        write_bytes_atomic(os.path.join(tmp, CARD_FILE), card.encode('utf-8'))
        _replace_folder(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return config
