"""What a DiffIR network state holds (stage, task, scale, width), read from keys and shapes.

:class:`Layout` is both what a file holds and what a caller wants; :class:`NetworkCheckpoint` is
one network of a file in our key names with its layout and where it came from.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Mapping, Optional

import torch

from .infer import infer_arch_kwargs

__all__ = ['Layout', 'NetworkCheckpoint', 'detect_layout']

StateDict = Dict[str, torch.Tensor]
_SR_SCALE_OF_INPUT = {3: 4, 12: 2, 48: 1}  # DIRformer input channels of SR -> scale


@dataclass(frozen=True)
class Layout:
    """What a DiffIR network state holds (read from keys and shapes), or what a caller wants."""

    stage: Optional[int] = None
    task: Optional[str] = None
    scale: Optional[int] = None
    dim: Optional[int] = None

    def describe(self) -> str:
        """E.g. ``'stage-2 sr x4 model, dim=64'``; unknown fields are left out."""
        words = [f'stage-{self.stage}'] if self.stage else []
        if self.task:
            words.append(f'{self.task} x{self.scale}' if self.task == 'sr' and self.scale
                         else self.task)
        text = ' '.join(words + ['model'])
        return f'{text}, dim={self.dim}' if self.dim else text


@dataclass
class NetworkCheckpoint:
    """One network of a checkpoint file, in our key names.

    Attributes:
        state: The state dict (``dirformer.*``, ``cpen.*`` [, ``denoiser.*``]).
        layout: Stage, task, scale and width read from ``state``.
        source: Where it came from, for messages (``'DiffIRS2.pth [params_ema]'``).
        file_format: ``'basicsr'``, ``'lightning'``, ``'mmengine'`` (ours) or ``'state_dict'``.
        schedule: The official ``diffusion.*`` schedule buffers, when the file has them.
    """

    state: StateDict
    layout: Layout
    source: str
    file_format: str
    schedule: StateDict = field(default_factory=dict)

    def arch_kwargs(self) -> Dict[str, Any]:
        """Constructor arguments of this network (:func:`~.infer.infer_arch_kwargs`)."""
        return infer_arch_kwargs(self)


def detect_layout(state: Mapping[str, torch.Tensor]) -> Layout:
    """Read stage, task, scale and width from a state dict in our naming."""
    stage = 2 if any(k.startswith('denoiser.') for k in state) else (
        1 if any(k.startswith('cpen.') for k in state) else None)
    embed = state.get('dirformer.patch_embed.proj.weight')
    dim = int(embed.shape[0]) if embed is not None else None
    in_channels = int(embed.shape[1]) if embed is not None else None
    task = scale = None
    if any(k.startswith('dirformer.tail.') for k in state):
        task, scale = 'sr', _SR_SCALE_OF_INPUT.get(in_channels)
    elif 'dirformer.output.weight' in state:
        task, scale = ('inpaint' if in_channels == 4 else 'deblur'), 1
    return Layout(stage=stage, task=task, scale=scale, dim=dim)
