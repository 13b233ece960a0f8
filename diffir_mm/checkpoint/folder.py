"""The model folder: a checkpoint that says what it is, without pickle.

A folder written by :func:`~diffir_mm.checkpoint.write_model_folder`
(``tools/convert_official_ckpt.py --format safetensors``) holds:

* ``model.safetensors`` -- the networks in our naming (``generator.*``, ``generator_ema.*``,
  ``teacher.*``; each stored once: a missing EMA copy reads back as the generator and vice versa,
  :func:`fill_generators`), with the checkpoint's ``meta`` as JSON in the header;
* ``config.json`` -- what the weights are (:data:`CLAIMS`: task, stage, scale, big and the
  architecture arguments), where they came from (file name and SHA-256) and who wrote it;
* ``README.md`` -- the model card (:mod:`.card`).

Every reader accepts the folder or its ``model.safetensors`` alone: :func:`~.safe_load.load_file`
opens the folder through :func:`read_folder`, which checks that ``config.json`` and the header
say the same; :func:`~.formats.read_components` then checks what they say against the keys and
shapes of the weights. A folder that lies is refused in one line.
"""
from __future__ import annotations

import hashlib
import json
import os
from typing import Any, Dict, Mapping, Optional

from .errors import CheckpointMismatchError

__all__ = ['MODEL_FILE', 'CONFIG_FILE', 'CARD_FILE', 'FOLDER_FORMAT', 'FOLDER_FORMAT_VERSION',
           'CLAIMS', 'is_model_folder', 'read_config', 'folder_claims', 'weights_file',
           'fill_generators', 'file_sha256']

MODEL_FILE = 'model.safetensors'
CONFIG_FILE = 'config.json'
CARD_FILE = 'README.md'
#: ``config.json['format']`` of our folders (a folder is replaced only when it has this).
FOLDER_FORMAT = 'diffir-mm model folder'
FOLDER_FORMAT_VERSION = 1
#: Entries of ``config.json`` (and of ``meta['diffir_mm']``) that describe the weights; reading
#: checks them against the keys and shapes (:func:`~.formats.read_components`).
CLAIMS = ('task', 'stage', 'scale', 'big', 'arch_kwargs')


def file_sha256(path: str, chunk: int = 1 << 22) -> str:
    """SHA-256 (hex) of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, 'rb') as fh:
        for block in iter(lambda: fh.read(chunk), b''):
            digest.update(block)
    return digest.hexdigest()


def read_config(folder: str) -> Optional[Dict[str, Any]]:
    """``config.json`` of a model folder (None when the folder has none).

    Raises:
        CheckpointMismatchError: Not JSON, or not an object.
    """
    path = os.path.join(folder, CONFIG_FILE)
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding='utf-8') as fh:
            config = json.load(fh)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointMismatchError(f'cannot read {path}: {" ".join(str(err).split())}') \
            from None
    if not isinstance(config, dict):
        raise CheckpointMismatchError(f'{path} is not a JSON object')
    return config


def is_model_folder(path: str) -> bool:
    """Whether ``path`` is a folder written by :func:`~diffir_mm.checkpoint.write_model_folder`."""
    if not os.path.isdir(path):
        return False
    try:
        config = read_config(path)
    except CheckpointMismatchError:
        return False
    return config is not None and config.get('format') == FOLDER_FORMAT


def folder_claims(folder: str, header: Mapping[str, Any]) -> Dict[str, Any]:
    """What a model folder says its weights are.

    Args:
        folder: The folder.
        header: ``meta['diffir_mm']`` of its ``model.safetensors`` (may be empty).

    Returns:
        ``header`` with ``config.json``'s :data:`CLAIMS` added.

    Raises:
        CheckpointMismatchError: ``config.json`` is unreadable or says otherwise than the header.
    """
    config = read_config(folder) or {}
    claims = dict(header)
    for key in CLAIMS:
        if key not in config:
            continue
        if key in header and json.dumps(header[key]) != json.dumps(config[key]):
            raise CheckpointMismatchError(
                f'{folder}: {CONFIG_FILE} says {key}={config[key]!r} but {MODEL_FILE} says '
                f'{key}={header[key]!r}; the folder is inconsistent')
        claims[key] = config[key]
    return claims


def weights_file(folder: str) -> str:
    """``model.safetensors`` of a model folder.

    Raises:
        FileNotFoundError: The folder has none.
    """
    path = os.path.join(folder, MODEL_FILE)
    if not os.path.isfile(path):
        raise FileNotFoundError(f'{folder} is a folder without {MODEL_FILE}: give a checkpoint '
                                'file or a model folder of tools/convert_official_ckpt.py '
                                '--format safetensors')
    return path


def fill_generators(state: Mapping[str, Any]) -> Dict[str, Any]:
    """``generator.*`` and ``generator_ema.*`` both, the missing one being the other (shared
    tensors, no copy): the rule of :func:`~diffir_mm.checkpoint.mmengine_checkpoint`, applied when
    a folder is read, so MMagic's editors find both."""
    out = dict(state)
    for have, want in (('generator.', 'generator_ema.'), ('generator_ema.', 'generator.')):
        if not any(k.startswith(want) for k in out):
            out.update({want + k[len(have):]: v for k, v in state.items() if k.startswith(have)})
    return out
