"""Hyper-parameters of every released DiffIR configuration, and builders from them.

Values are the official ones (``options/*.yml`` of the BasicSR tasks and the LaMa generator
YAMLs of inpainting); see ``docs/advanced_guides/method.md`` §2.5.
"""
from __future__ import annotations

import copy
from typing import Any, Dict

from .diffir_net import DiffIRS1Net, DiffIRS2Net
from .dirformer import TASKS

__all__ = ['TASKS', 'SR_SCALES', 'PRESETS', 'DIFFUSION_DEFAULTS', 'preset_name', 'preset_kwargs',
           'build_diffir']

#: SR factors of the released models (``scale`` only applies to ``task='sr'``).
SR_SCALES = (4, 2, 1)

_SR = dict(task='sr', dim=64, num_blocks=[13, 1, 1, 1], num_refinement_blocks=13,
           heads=[1, 2, 4, 8], ffn_expansion_factor=2.2, bias=False, LayerNorm_type='BiasFree',
           n_encoder_res=9, inp_channels=3, out_channels=3)
_INPAINT = dict(task='inpaint', scale=1, inp_channels=4, out_channels=3, dim=52,
                num_blocks=[1, 1, 1, 9], num_refinement_blocks=0, heads=[1, 2, 4, 8],
                ffn_expansion_factor=1.8, bias=False, LayerNorm_type='WithBias', n_encoder_res=5)

#: Network hyper-parameters of each released model (stage 1 and stage 2 share them).
PRESETS: Dict[str, Dict[str, Any]] = {
    'deblur': dict(task='deblur', scale=1, inp_channels=3, out_channels=3, dim=48,
                   num_blocks=[3, 5, 6, 6], num_refinement_blocks=4, heads=[1, 2, 4, 8],
                   ffn_expansion_factor=2.0, bias=False, LayerNorm_type='WithBias',
                   n_encoder_res=5),
    'sr_x4': dict(_SR, scale=4),
    'sr_x2': dict(_SR, scale=2),
    'sr_x1': dict(_SR, scale=1),
    'inpaint': dict(_INPAINT),
    'inpaint_big': dict(_INPAINT, num_blocks=[1, 1, 1, 20], n_encoder_res=8),
}

#: Stage-2 diffusion hyper-parameters, identical in every release.
DIFFUSION_DEFAULTS: Dict[str, Any] = dict(n_denoise_res=1, timesteps=4, linear_start=0.1,
                                          linear_end=0.99)

_STAGE2_ONLY = set(DIFFUSION_DEFAULTS)
#: Options of both stages that no preset fixes.
_OPTIONS = {'with_cp'}


def preset_name(task: str, scale: int = 4, big: bool = False) -> str:
    """The released preset of a task -- the one translation of the user vocabulary.

    Every entry point (``load_official``, the converter, the inferencer, the restorer, the CLI)
    names a model as ``task`` ('deblur' | 'sr' | 'inpaint') + ``scale`` (SR only, default 4) +
    ``big`` (inpainting only) and calls this.

    Raises:
        ValueError: An unknown task, an SR scale other than 4, 2 or 1, or ``big`` for a task
            other than inpainting.
    """
    if task not in TASKS:
        raise ValueError(f'task must be one of {", ".join(TASKS)}; got {task!r}')
    if big and task != 'inpaint':
        raise ValueError(f"big applies to task 'inpaint' only, not {task!r}")
    if task == 'sr':
        if scale not in SR_SCALES:
            raise ValueError(f'SR scale must be 4, 2 or 1, got {scale!r}')
        return f'sr_x{scale}'
    if task == 'inpaint':
        return 'inpaint_big' if big else 'inpaint'
    return task


def preset_kwargs(preset: str, stage: int, **overrides: Any) -> Dict[str, Any]:
    """Constructor kwargs of ``DiffIRS{stage}Net`` for ``preset``, with ``overrides`` applied."""
    if preset not in PRESETS:
        raise ValueError(f'unknown preset {preset!r}; choose from {sorted(PRESETS)}')
    if stage not in (1, 2):
        raise ValueError(f'stage must be 1 or 2, got {stage!r}')
    kwargs = copy.deepcopy(PRESETS[preset])
    if stage == 2:
        kwargs.update(DIFFUSION_DEFAULTS)
    unknown = set(overrides) - set(kwargs) - _STAGE2_ONLY - _OPTIONS
    if unknown:
        raise TypeError(f'unknown DiffIR argument(s): {sorted(unknown)}')
    for key, value in overrides.items():
        if stage == 1 and key in _STAGE2_ONLY:
            continue  # diffusion settings do not apply to stage 1
        kwargs[key] = value
    return kwargs


def build_diffir(preset: str, stage: int, **overrides: Any):
    """Build a stage-1 or stage-2 network from a released preset.

    Args:
        preset: One of :data:`PRESETS` ('deblur', 'sr_x4', 'sr_x2', 'sr_x1', 'inpaint',
            'inpaint_big').
        stage: 1 (CPEN_S1 + DIRformer) or 2 (CPEN_S2 + denoiser + DIRformer).
        **overrides: Official constructor names (``dim``, ``num_blocks``, ...).
    """
    kwargs = preset_kwargs(preset, stage, **overrides)
    return (DiffIRS1Net if stage == 1 else DiffIRS2Net)(**kwargs)

