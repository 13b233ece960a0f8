"""Reading the authors' released checkpoints and mapping them onto our networks.

Supported inputs:

* BasicSR ``.pth`` files (deblurring, real-world SR, bicubic SR): ``{'params_ema': sd, 'params': sd}``
  (``params_ema`` preferred, ``params`` as fallback). Stage-1 keys ``G.*``/``E.*``; stage-2 keys
  ``G.*``/``condition.*``/``denoise.*`` plus the duplicate ``diffusion.model.*``,
  ``diffusion.condition.*`` and 12 schedule buffers ``diffusion.*``.
* LaMa / PyTorch-Lightning ``.ckpt`` files (inpainting): ``state_dict`` with ``generator.*`` (the
  trained network), ``generatorS1.*`` (the stage-1 teacher of a stage-2 run), discriminator, losses
  and evaluators.
* A bare official state dict, and our own checkpoints (mmengine ``state_dict`` with
  ``generator.dirformer.*`` keys), so callers can pass either format.

Everything is loaded with ``torch.load(..., weights_only=True)``.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional, Union

import torch
from torch import nn

from .diffir_net import DiffIRS1Net, DiffIRS2Net
from .presets import build_diffir, preset_name

__all__ = ['OfficialLayout', 'load_official', 'read_checkpoint', 'extract_network_state',
           'detect_layout', 'official_to_ours', 'ours_to_official', 'CheckpointMismatchError',
           'load_state_strict']

StateDict = Dict[str, torch.Tensor]

#: official top-level prefix -> ours, per stage
_PREFIXES = {
    1: {'G.': 'dirformer.', 'E.': 'cpen.'},
    2: {'G.': 'dirformer.', 'condition.': 'cpen.', 'denoise.': 'denoiser.'},
}
_SCHEDULE_BUFFERS = (
    'betas', 'alphas_cumprod', 'alphas_cumprod_prev', 'sqrt_alphas_cumprod',
    'sqrt_one_minus_alphas_cumprod', 'log_one_minus_alphas_cumprod', 'sqrt_recip_alphas_cumprod',
    'sqrt_recipm1_alphas_cumprod', 'posterior_variance', 'posterior_log_variance_clipped',
    'posterior_mean_coef1', 'posterior_mean_coef2')


class CheckpointMismatchError(ValueError):
    """A checkpoint does not fit the requested task / scale / stage / architecture."""


@dataclass
class OfficialLayout:
    """What a DiffIR state dict contains, read from its keys and shapes."""

    stage: Optional[int]
    task: Optional[str]
    scale: Optional[int]
    dim: Optional[int]

    def describe(self) -> str:
        task = self.task or 'unknown-task'
        if self.task == 'sr' and self.scale:
            task += f' x{self.scale}'
        stage = f'stage-{self.stage}' if self.stage else 'unknown-stage'
        dim = f', dim={self.dim}' if self.dim else ''
        return f'{stage} {task} model{dim}'


def read_checkpoint(source: Union[str, os.PathLike, Mapping[str, Any]]) -> Mapping[str, Any]:
    """Load a checkpoint file safely (``weights_only=True``), or pass a mapping through."""
    if isinstance(source, Mapping):
        return source
    path = os.fspath(source)
    if not os.path.isfile(path):
        raise FileNotFoundError(f'checkpoint not found: {path}')
    try:
        return torch.load(path, map_location='cpu', weights_only=True)
    except Exception as err:  # noqa: BLE001 - report any unpickling failure in one line
        raise CheckpointMismatchError(
            f'cannot read checkpoint {path}: {type(err).__name__}: {str(err).splitlines()[0]}'
        ) from None


def _strip(sd: Mapping[str, torch.Tensor], prefix: str) -> StateDict:
    return {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}


def extract_network_state(ckpt: Mapping[str, Any], component: str = 'generator') -> StateDict:
    """Return the network state dict in official naming (``G.*``, ``E.*``, ``condition.*`` ...).

    Args:
        ckpt: A loaded checkpoint in any supported format.
        component: ``'generator'`` (the trained network) or ``'teacher'`` (the stage-1 teacher
            stored in LaMa stage-2 checkpoints, and in our stage-2 checkpoints).
    """
    if component not in ('generator', 'teacher'):
        raise ValueError(f"component must be 'generator' or 'teacher', got {component!r}")
    if 'params_ema' in ckpt or 'params' in ckpt:  # BasicSR
        if component == 'teacher':
            raise CheckpointMismatchError('BasicSR checkpoints hold no stage-1 teacher; pass the '
                                          'stage-1 file itself')
        sd = ckpt['params_ema'] if 'params_ema' in ckpt else ckpt['params']
    elif 'state_dict' in ckpt:  # Lightning (LaMa) or mmengine (ours)
        sd = ckpt['state_dict']
        if any(k.startswith('generator.dirformer.') for k in sd):  # ours (EMA weights first)
            if component == 'teacher':
                prefix = 'teacher.'
            elif any(k.startswith('generator_ema.') for k in sd):
                prefix = 'generator_ema.'
            else:
                prefix = 'generator.'
            ours = _strip(sd, prefix)
            if not ours:
                raise CheckpointMismatchError(f'checkpoint has no {prefix}* weights')
            return ours_to_official(ours)
        prefix = 'generator.' if component == 'generator' else 'generatorS1.'
        sd = _strip(sd, prefix)
        if not sd:
            raise CheckpointMismatchError(f'Lightning checkpoint has no {prefix}* weights')
    else:
        sd = dict(ckpt)
    sd = {re.sub(r'^module\.', '', k): v for k, v in sd.items()}
    if any(k.startswith('dirformer.') for k in sd):
        sd = ours_to_official(sd)
    if not any(k.startswith('G.') for k in sd):
        raise CheckpointMismatchError('not a DiffIR checkpoint: no DIRformer (G.*) weights found')
    return sd


def detect_layout(sd: Mapping[str, torch.Tensor]) -> OfficialLayout:
    """Read stage, task, scale and width from an official-layout state dict."""
    stage = 1 if any(k.startswith('E.') for k in sd) else (
        2 if any(k.startswith('condition.') for k in sd) else None)
    embed = sd.get('G.patch_embed.proj.weight')
    dim = int(embed.shape[0]) if embed is not None else None
    in_ch = int(embed.shape[1]) if embed is not None else None
    task = scale = None
    if any(k.startswith('G.tail.') for k in sd):
        task = 'sr'
        scale = {3: 4, 12: 2, 48: 1}.get(in_ch)
    elif 'G.output.weight' in sd:
        task = 'inpaint' if in_ch == 4 else 'deblur'
    return OfficialLayout(stage=stage, task=task, scale=scale, dim=dim)


def official_to_ours(sd: Mapping[str, torch.Tensor], stage: int,
                     net: Optional[nn.Module] = None) -> StateDict:
    """Map official keys onto ours; check and drop the stage-2 duplicates and schedule buffers.

    Args:
        sd: Official-layout state dict.
        stage: 1 or 2.
        net: When given (a ``DiffIRS2Net``), the stored schedule buffers are checked against it.
    """
    mapping = _PREFIXES[stage]
    out: StateDict = {}
    for key, value in sd.items():
        if key.startswith('diffusion.'):
            _check_diffusion_entry(key, value, sd, net)
            continue
        for old, new in mapping.items():
            if key.startswith(old):
                out[new + key[len(old):]] = value
                break
        else:
            out[key] = value  # left for load_state_dict to report as unexpected
    return out


def _check_diffusion_entry(key: str, value: torch.Tensor, sd: Mapping[str, torch.Tensor],
                           net: Optional[nn.Module]) -> None:
    name = key[len('diffusion.'):]
    for dup, orig in (('model.', 'denoise.'), ('condition.', 'condition.')):
        if name.startswith(dup):
            twin = sd.get(orig + name[len(dup):])
            if twin is not None and not torch.equal(twin, value):
                raise CheckpointMismatchError(f'{key} differs from {orig + name[len(dup):]}; '
                                              'the checkpoint is inconsistent')
            return
    if net is not None and name in _SCHEDULE_BUFFERS and hasattr(net.diffusion, name):
        ours = getattr(net.diffusion, name)
        if ours.shape != value.shape or not torch.allclose(ours, value.float(), rtol=1e-4,
                                                           atol=1e-6):
            raise CheckpointMismatchError(
                f'diffusion schedule in the checkpoint ({name}={value.tolist()}) does not match '
                f'the network ({ours.tolist()}); check timesteps/linear_start/linear_end')


def ours_to_official(sd: Mapping[str, torch.Tensor], with_duplicates: bool = False,
                     net: Optional[DiffIRS2Net] = None) -> StateDict:
    """Map our keys back to official naming (for export and layout checks).

    Args:
        sd: Our state dict (``dirformer.*``, ``cpen.*`` [, ``denoiser.*``]).
        with_duplicates: For stage 2, also emit the official ``diffusion.model.*``,
            ``diffusion.condition.*`` duplicates and, with ``net``, the 12 schedule buffers.
        net: Stage-2 network providing the schedule.
    """
    stage = 2 if any(k.startswith('denoiser.') for k in sd) else 1
    reverse = {new: old for old, new in _PREFIXES[stage].items()}
    out: StateDict = {}
    for key, value in sd.items():
        for new, old in reverse.items():
            if key.startswith(new):
                out[old + key[len(new):]] = value
                break
        else:
            out[key] = value
    if stage == 2 and with_duplicates:
        for key, value in list(out.items()):
            if key.startswith('denoise.'):
                out['diffusion.model.' + key[len('denoise.'):]] = value
            elif key.startswith('condition.'):
                out['diffusion.condition.' + key[len('condition.'):]] = value
        if net is not None:
            out.update({f'diffusion.{k}': v for k, v in _official_schedule(net).items()})
    return out


def _official_schedule(net: DiffIRS2Net) -> StateDict:
    """All 12 official schedule buffers (float32), derived from the network's betas."""
    d = net.diffusion
    betas = d.betas.double()
    ac = torch.cumprod(1 - betas, 0)
    ac_prev = torch.cat([betas.new_ones(1), ac[:-1]])
    post_var = betas * (1 - ac_prev) / (1 - ac)
    values = dict(
        betas=betas, alphas_cumprod=ac, alphas_cumprod_prev=ac_prev,
        sqrt_alphas_cumprod=ac.sqrt(), sqrt_one_minus_alphas_cumprod=(1 - ac).sqrt(),
        log_one_minus_alphas_cumprod=(1 - ac).log(), sqrt_recip_alphas_cumprod=(1 / ac).sqrt(),
        sqrt_recipm1_alphas_cumprod=(1 / ac - 1).sqrt(), posterior_variance=post_var,
        posterior_log_variance_clipped=post_var.clamp(min=1e-20).log(),
        posterior_mean_coef1=betas * ac_prev.sqrt() / (1 - ac),
        posterior_mean_coef2=(1 - ac_prev) * (1 - betas).sqrt() / (1 - ac))
    return {k: v.float() for k, v in values.items()}


def load_state_strict(module: nn.Module, state: Mapping[str, torch.Tensor], what: str) -> None:
    """``module.load_state_dict(state)`` that reports any mismatch as one clear line.

    Raises:
        CheckpointMismatchError: tensors of another shape, missing or unexpected keys.
    """
    own = module.state_dict()
    wrong = [k for k, v in state.items() if k in own and own[k].shape != v.shape]
    if wrong:
        k = wrong[0]
        raise CheckpointMismatchError(
            f'{what} does not fit the network: {len(wrong)} tensors differ in shape (e.g. {k}: '
            f'{tuple(state[k].shape)} in the checkpoint, {tuple(own[k].shape)} in the network); '
            'check the architecture arguments (dim, num_blocks, ffn_expansion_factor, ...)')
    result = module.load_state_dict(state, strict=False)
    problems = []
    if result.missing_keys:
        problems.append(f'{len(result.missing_keys)} missing (e.g. {result.missing_keys[0]})')
    if result.unexpected_keys:
        problems.append(f'{len(result.unexpected_keys)} unexpected '
                        f'(e.g. {result.unexpected_keys[0]})')
    if problems:
        raise CheckpointMismatchError(f'{what} does not fit the network: ' + '; '.join(problems))


def load_official(source: Union[str, os.PathLike, Mapping[str, Any]], task: str = 'sr',
                  stage: int = 2, scale: int = 4, big: bool = False, component: str = 'generator',
                  **official_kwargs: Any) -> Union[DiffIRS1Net, DiffIRS2Net]:
    """Build the network of ``task``/``stage``/``scale`` and load an official checkpoint into it.

    Args:
        source: Path of a released ``.pth``/``.ckpt`` file, or an already loaded checkpoint or
            state dict (official layout or ours).
        task: ``'deblur'``, ``'sr'`` or ``'inpaint'``.
        stage: 1 (``net(lq, gt)``) or 2 (``net(lq)``).
        scale: SR factor (4, 2 or 1).
        big: Inpainting only: the 'big' Places-Challenge model.
        component: ``'generator'``, or ``'teacher'`` for the stage-1 teacher in LaMa S2 files.
        **official_kwargs: Official constructor arguments (``dim``, ``num_blocks``, ...);
            omitted ones take the released preset.

    Returns:
        The network in eval mode.

    Raises:
        CheckpointMismatchError: The checkpoint is of another task, scale, stage or size.
    """
    name = preset_name(task, scale, big)
    net = build_diffir(name, stage, **official_kwargs)
    sd = extract_network_state(read_checkpoint(source), component)
    found = detect_layout(sd)
    wanted = OfficialLayout(stage=stage, task=task, scale=scale if task == 'sr' else None,
                            dim=net.dirformer.patch_embed.proj.out_channels)
    if ((found.stage, found.task) != (wanted.stage, wanted.task)
            or (task == 'sr' and found.scale != scale)):
        raise CheckpointMismatchError(
            f'checkpoint holds a {found.describe()}, but a {wanted.describe()} was requested')
    ours = official_to_ours(sd, stage, net if stage == 2 else None)
    load_state_strict(net, ours, f'checkpoint ({found.describe()})')
    return net.eval()
