"""Official DiffIR key names <-> ours, and the official diffusion schedule buffers.

Ours (``dirformer.*``, ``cpen.*``, ``denoiser.*``: the module tree of ``DiffIRS1Net`` /
``DiffIRS2Net``) are canonical. The official networks name them ``G.*`` + ``E.*`` (stage 1) or
``G.*`` + ``condition.*`` + ``denoise.*`` (stage 2), and stage 2 also stores the duplicates
``diffusion.model.*`` / ``diffusion.condition.*`` of its ``DDPM`` module and 12 schedule buffers
``diffusion.*``. Reading checks the duplicates equal and drops them and keeps the schedule aside
(to check it against the network); writing can emit both for the released layout.
"""
from __future__ import annotations

from typing import Any, Dict, Mapping, Tuple

import torch

from .errors import CheckpointMismatchError

__all__ = ['SCHEDULE_BUFFERS', 'official_to_ours', 'split_official', 'ours_to_official',
           'official_schedule']

StateDict = Dict[str, torch.Tensor]

#: Official top-level prefix -> ours, per stage.
_PREFIXES = {
    1: {'G.': 'dirformer.', 'E.': 'cpen.'},
    2: {'G.': 'dirformer.', 'condition.': 'cpen.', 'denoise.': 'denoiser.'},
}
#: Stage-2 duplicates of the official ``DDPM`` module: duplicate prefix -> original prefix.
_DUPLICATES = {'diffusion.model.': 'denoise.', 'diffusion.condition.': 'condition.'}
#: The official schedule buffers (``diffusion.<name>``).
SCHEDULE_BUFFERS = (
    'betas', 'alphas_cumprod', 'alphas_cumprod_prev', 'sqrt_alphas_cumprod',
    'sqrt_one_minus_alphas_cumprod', 'log_one_minus_alphas_cumprod', 'sqrt_recip_alphas_cumprod',
    'sqrt_recipm1_alphas_cumprod', 'posterior_variance', 'posterior_log_variance_clipped',
    'posterior_mean_coef1', 'posterior_mean_coef2')


def split_official(sd: Mapping[str, torch.Tensor],
                   where: str = 'checkpoint') -> Tuple[StateDict, StateDict]:
    """Official keys -> ours, and the schedule buffers; the stage-2 duplicates are checked.

    Args:
        sd: An official network state (``G.*`` ...).
        where: The source, for messages.

    Returns:
        ``(state in our naming, {buffer name: schedule tensor})``. Unknown keys are kept as they
        are, for the fit check to report them.

    Raises:
        CheckpointMismatchError: A duplicate differs from its original.
    """
    stage = 2 if any(k.startswith(('condition.', 'denoise.')) for k in sd) else 1
    mapping = _PREFIXES[stage]
    out: StateDict = {}
    schedule: StateDict = {}
    for key, value in sd.items():
        duplicate = next((d for d in _DUPLICATES if key.startswith(d)), None)
        if duplicate is not None:
            original = _DUPLICATES[duplicate] + key[len(duplicate):]
            if original in sd and not torch.equal(sd[original], value):
                raise CheckpointMismatchError(f'{where}: {key} differs from {original}; the '
                                              'checkpoint is inconsistent')
            continue
        if key.startswith('diffusion.'):
            schedule[key[len('diffusion.'):]] = value
            continue
        prefix = next((p for p in mapping if key.startswith(p)), None)
        out[key if prefix is None else mapping[prefix] + key[len(prefix):]] = value
    return out, schedule


def official_to_ours(sd: Mapping[str, torch.Tensor]) -> StateDict:
    """Map an official state dict onto our keys (duplicates checked and dropped, no buffers)."""
    return split_official(sd)[0]


def ours_to_official(sd: Mapping[str, torch.Tensor], with_duplicates: bool = False,
                     net: Any = None) -> StateDict:
    """Map our keys to the official naming (export, and tests against released layouts).

    Args:
        sd: Our state dict (``dirformer.*``, ``cpen.*`` [, ``denoiser.*``]).
        with_duplicates: For stage 2, also emit the official ``diffusion.model.*`` and
            ``diffusion.condition.*`` duplicates and, with ``net``, the 12 schedule buffers.
        net: Stage-2 network (``DiffIRS2Net``) providing the schedule.
    """
    stage = 2 if any(k.startswith('denoiser.') for k in sd) else 1
    reverse = {ours: official for official, ours in _PREFIXES[stage].items()}
    out: StateDict = {}
    for key, value in sd.items():
        prefix = next((p for p in reverse if key.startswith(p)), None)
        out[key if prefix is None else reverse[prefix] + key[len(prefix):]] = value
    if stage == 2 and with_duplicates:
        for duplicate, original in _DUPLICATES.items():
            out.update({duplicate + k[len(original):]: v for k, v in list(out.items())
                        if k.startswith(original)})
        if net is not None:
            out.update({f'diffusion.{k}': v for k, v in official_schedule(net).items()})
    return out


def official_schedule(net: Any) -> StateDict:
    """All 12 official schedule buffers (float32), derived from ``net.diffusion.betas``."""
    betas = net.diffusion.betas.double()
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
