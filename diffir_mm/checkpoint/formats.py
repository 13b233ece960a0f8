"""Checkpoint file formats -> the DiffIR networks (and discriminator) they hold, in our naming.

Formats, told apart by their top-level keys:

* BasicSR ``.pth`` (official deblurring, real-world and bicubic SR): ``{'params': sd,
  'params_ema': sd}`` in the official naming (:mod:`.naming`).
* LaMa / PyTorch-Lightning ``.ckpt`` (official inpainting): ``state_dict`` with ``generator.*``
  and, in stage-2 runs, the stage-1 teacher ``generatorS1.*`` (discriminator, losses and
  evaluators are ignored).
* Ours (mmengine): ``state_dict`` with ``generator.*``, ``generator_ema.*``, ``teacher.*``,
  ``discriminator.*`` in our naming -- converted files and training checkpoints of
  ``tools/train.py`` alike (their ``message_hub``, ``optimizer``, ``rng_state`` ... are ignored).
* A bare state dict in either naming (a ``module.`` prefix is dropped), e.g. a foreign
  ``.safetensors`` file.

Files are opened once by :func:`~.safe_load.read_checkpoint`.
"""
from __future__ import annotations

import os
import re
from typing import Any, Dict, Mapping, Tuple, Union

import torch

from .errors import CheckpointMismatchError
from .layouts import NetworkCheckpoint, detect_layout
from .naming import split_official
from .safe_load import read_checkpoint

__all__ = ['Source', 'read_components', 'read_network', 'discriminator_state']

StateDict = Dict[str, torch.Tensor]
Source = Union[str, os.PathLike, Mapping[str, Any]]

#: mmengine state-dict prefix -> component, for our checkpoints and LaMa ones.
_COMPONENT_PREFIXES = (('generator.', 'generator'), ('generator_ema.', 'generator_ema'),
                       ('teacher.', 'teacher'), ('generatorS1.', 'teacher'))


def _source_name(source: Any) -> str:
    return os.path.basename(os.fspath(source)) if isinstance(source, (str, os.PathLike)) \
        else 'checkpoint'


def _strip(sd: Mapping[str, Any], prefix: str) -> StateDict:
    return {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}


def _raw_components(ckpt: Mapping[str, Any]) -> Tuple[str, Dict[str, Mapping[str, Any]]]:
    """``(file format, {component: raw state})`` of a loaded checkpoint."""
    if 'params' in ckpt or 'params_ema' in ckpt:
        groups = {'generator': ckpt.get('params'), 'generator_ema': ckpt.get('params_ema')}
        return 'basicsr', {k: v for k, v in groups.items() if v is not None}
    state = ckpt.get('state_dict')
    if isinstance(state, Mapping):
        groups = {}
        for prefix, component in _COMPONENT_PREFIXES:
            part = _strip(state, prefix)
            if part:
                groups[component] = part
        if groups:
            ours = any(k.startswith('dirformer.') for part in groups.values() for k in part)
            return ('mmengine' if ours else 'lightning'), groups
        return 'mmengine', {'generator': state}  # a bare network saved by mmengine
    return 'state_dict', {'generator': ckpt}


def read_components(source: Source) -> Dict[str, NetworkCheckpoint]:
    """Every DiffIR network of a checkpoint, in our naming.

    Args:
        source: A file path, or an already loaded checkpoint / state dict.

    Returns:
        ``{'generator': ..., 'generator_ema': ..., 'teacher': ...}`` with the components the file
        has: BasicSR ``params`` -> ``generator``, ``params_ema`` -> ``generator_ema``; LaMa
        ``generator.*`` -> ``generator``, ``generatorS1.*`` -> ``teacher``; ours by prefix; a bare
        state dict -> ``generator``.

    Raises:
        FileNotFoundError, CheckpointMismatchError: missing, unreadable or not DiffIR.
    """
    name = _source_name(source)
    file_format, groups = _raw_components(read_checkpoint(source))
    labels = {'generator': 'params', 'generator_ema': 'params_ema'}
    out = {}
    for component, raw in groups.items():
        label = labels[component] if file_format == 'basicsr' else component
        where = f'{name} [{label}]' if file_format != 'state_dict' else name
        state = {re.sub(r'^module\.', '', k): v for k, v in raw.items()}
        schedule: StateDict = {}
        if any(k.startswith('dirformer.') for k in state):
            pass  # already ours
        elif any(k.startswith('G.') for k in state):
            state, schedule = split_official(state, where)
        else:
            raise CheckpointMismatchError(f'{where} is not a DiffIR checkpoint: no DIRformer '
                                          '(G.* or dirformer.*) weights found')
        out[component] = NetworkCheckpoint(state, detect_layout(state), where, file_format,
                                           schedule)
    return out


def read_network(source: Union[Source, NetworkCheckpoint],
                 component: str = 'generator') -> NetworkCheckpoint:
    """The network of a checkpoint that a caller loads.

    Args:
        source: As :func:`read_components`, or a :class:`NetworkCheckpoint` (returned as is).
        component: ``'generator'`` -- the trained network, EMA weights preferred
            (``params_ema`` / ``generator_ema``, else ``params`` / ``generator``) -- or
            ``'teacher'``, the stage-1 teacher stored in LaMa stage-2 files and in ours.
    """
    if isinstance(source, NetworkCheckpoint):
        return source
    if component not in ('generator', 'teacher'):
        raise ValueError(f"component must be 'generator' or 'teacher', got {component!r}")
    components = read_components(source)
    if component == 'teacher':
        if 'teacher' not in components:
            raise CheckpointMismatchError(
                f'{_source_name(source)} holds no stage-1 teacher (teacher.* or generatorS1.* '
                'weights); pass the stage-1 file itself')
        return components['teacher']
    return components.get('generator_ema') or components['generator']


def discriminator_state(source: Source) -> StateDict:
    """The discriminator of one of our GAN checkpoints or of an official ``net_d_*.pth``.

    Ours: the ``discriminator.*`` weights of ``state_dict``. Official BasicSR ``net_d``
    (``{'params': ...}`` or a bare state dict): a ``module.`` prefix is dropped and the official
    ``convN`` become MMagic's ``conv_N`` (``UNetDiscriminatorWithSpectralNorm``).

    Raises:
        FileNotFoundError, CheckpointMismatchError: missing, unreadable, or one of ours without
            ``discriminator.*`` weights.
    """
    ckpt = read_checkpoint(source)
    if isinstance(ckpt.get('state_dict'), Mapping):  # ours (mmengine)
        state = _strip(ckpt['state_dict'], 'discriminator.')
        if not state:
            raise CheckpointMismatchError(f'{_source_name(source)} holds no discriminator.* '
                                          'weights')
        return state
    return {re.sub(r'^conv(\d)', r'conv_\1', re.sub(r'^module\.', '', k)): v
            for k, v in ckpt.get('params', ckpt).items()}
