"""Whether a checkpoint fits, and loading it strictly: the one decision, one-line errors.

:func:`require` checks a :class:`~.layouts.NetworkCheckpoint` against what a caller wants (stage,
task, scale -- or a built network, then also every key, shape and the diffusion schedule);
:func:`load_network` / :func:`load_state_strict` load strictly after that check;
:func:`load_official` builds a released preset and loads a file into it.
"""
from __future__ import annotations

from typing import Any, Mapping, Optional, Union

import torch
from torch import nn

from .errors import CheckpointMismatchError
from .formats import Source, read_network
from .layouts import Layout, NetworkCheckpoint
from .naming import SCHEDULE_BUFFERS

__all__ = ['require', 'load_state_strict', 'load_network', 'load_official']


def _fit_problem(module: nn.Module, state: Mapping[str, torch.Tensor]) -> Optional[str]:
    """Why ``state`` does not load strictly into ``module`` (None when it does)."""
    own = module.state_dict()
    wrong = [k for k, v in state.items() if k in own and own[k].shape != v.shape]
    if wrong:
        k = wrong[0]
        return (f'{len(wrong)} tensors differ in shape (e.g. {k}: {tuple(state[k].shape)} in the '
                f'checkpoint, {tuple(own[k].shape)} in the network); check the architecture '
                'arguments (dim, num_blocks, ffn_expansion_factor, ...)')
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    problems = []
    if missing:
        problems.append(f'{len(missing)} missing (e.g. {missing[0]})')
    if unexpected:
        problems.append(f'{len(unexpected)} unexpected (e.g. {unexpected[0]})')
    return '; '.join(problems) or None


def _schedule_problem(net: nn.Module, schedule: Mapping[str, torch.Tensor]) -> Optional[str]:
    diffusion = getattr(net, 'diffusion', None)
    for name in SCHEDULE_BUFFERS:
        if name in schedule and diffusion is not None and hasattr(diffusion, name):
            ours, stored = getattr(diffusion, name), schedule[name]
            if ours.shape != stored.shape or not torch.allclose(ours, stored.float(), rtol=1e-4,
                                                                atol=1e-6):
                return (f'its diffusion schedule ({name}={stored.tolist()}) does not match the '
                        f'network ({ours.tolist()}); check timesteps/linear_start/linear_end')
    return None


def require(ckpt: NetworkCheckpoint, *, stage: Optional[int] = None, task: Optional[str] = None,
            scale: Optional[int] = None, net: Optional[nn.Module] = None,
            needed_by: Optional[str] = None) -> NetworkCheckpoint:
    """The one check whether a checkpoint fits; returns ``ckpt`` or raises in one line.

    Args:
        ckpt: From :func:`~.formats.read_network` / :func:`~.formats.read_components`.
        stage: Wanted stage (1 or 2); None accepts either.
        task: Wanted task (``'deblur'``, ``'sr'``, ``'inpaint'``); None accepts any.
        scale: Wanted SR factor (checked for ``task='sr'`` only).
        net: A built network: stage, task and scale are taken from it (a network with a
            ``denoiser`` is stage 2), and every key, shape and the stored diffusion schedule must
            fit it too.
        needed_by: Who asks, for the message (``'diffir_sr_s2.py'``); default "was requested".

    Raises:
        CheckpointMismatchError: ``"<source> holds a stage-1 deblur model, dim=48, but a
            stage-2 sr x4 model was requested"`` and the like.
    """
    from diffir_mm.archs.presets import preset_name

    if net is not None:
        stage = 2 if hasattr(net, 'denoiser') else 1
        task, scale = getattr(net, 'task', task), getattr(net, 'scale', scale)
    if task is not None:
        preset_name(task, scale if scale is not None else 4)  # validates the names
    found = ckpt.layout
    if ((stage is not None and found.stage != stage) or (task is not None and found.task != task)
            or (task == 'sr' and scale is not None and found.scale != scale)):
        wanted = Layout(stage=stage, task=task, scale=scale if task == 'sr' else None)
        tail = f'{needed_by} needs a {wanted.describe()}' if needed_by \
            else f'a {wanted.describe()} was requested'
        raise CheckpointMismatchError(f'{ckpt.source} holds a {found.describe()}, but {tail}')
    if net is not None:
        problem = _fit_problem(net, ckpt.state) or _schedule_problem(net, ckpt.schedule)
        if problem:
            raise CheckpointMismatchError(
                f'{ckpt.source} ({found.describe()}) does not fit the network: {problem}')
    return ckpt


def load_state_strict(module: nn.Module, state: Mapping[str, torch.Tensor], what: str) -> None:
    """``module.load_state_dict(state)`` of a part of a network (e.g. a DIRformer), one-line errors.

    Raises:
        CheckpointMismatchError: tensors of another shape, missing or unexpected keys.
    """
    problem = _fit_problem(module, state)
    if problem:
        raise CheckpointMismatchError(f'{what} does not fit the network: {problem}')
    module.load_state_dict(state, strict=True)


def load_network(net: nn.Module, ckpt: NetworkCheckpoint) -> nn.Module:
    """:func:`require` ``ckpt`` to fit ``net`` exactly, then load it; returns ``net``."""
    require(ckpt, net=net)
    net.load_state_dict(ckpt.state, strict=True)
    return net


def load_official(source: Union[Source, NetworkCheckpoint], task: str = 'sr', stage: int = 2,
                  scale: int = 4, big: bool = False, component: str = 'generator',
                  **official_kwargs: Any) -> nn.Module:
    """Build the network of ``task``/``stage``/``scale`` and load a checkpoint into it.

    Args:
        source: Path of a released ``.pth``/``.ckpt`` file, one of ours (converted or a
            training checkpoint), a ``.safetensors`` file, or an already loaded checkpoint or
            state dict (either naming).
        task: ``'deblur'``, ``'sr'`` or ``'inpaint'``.
        stage: 1 (``net(lq, gt)``) or 2 (``net(lq)``).
        scale: SR factor (4, 2 or 1).
        big: Inpainting only: the 'big' Places-Challenge model.
        component: ``'generator'`` (EMA weights preferred), or ``'teacher'`` for the stage-1
            teacher of LaMa stage-2 files and of ours.
        **official_kwargs: Official constructor arguments (``dim``, ``num_blocks``, ...);
            omitted ones take the released preset.

    Returns:
        The ``DiffIRS1Net`` / ``DiffIRS2Net`` in eval mode.

    Raises:
        CheckpointMismatchError: The checkpoint is of another task, scale, stage or size.
    """
    from diffir_mm.archs.presets import build_diffir, preset_name

    net = build_diffir(preset_name(task, scale, big), stage, **official_kwargs)
    return load_network(net, read_network(source, component)).eval()
