"""The constructor arguments of a checkpoint's network, read from its keys and shapes.

A checkpoint of any width or depth therefore builds its own network; released checkpoints give
exactly their preset values. The presets are imported when called (``diffir_mm.archs``
re-exports this package, so it is not imported at module level).
"""
from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Dict, Mapping, Sequence, Tuple

from .errors import CheckpointMismatchError

if TYPE_CHECKING:
    from .layouts import NetworkCheckpoint

__all__ = ['infer_arch_kwargs']

#: DIRformer levels with transformer blocks -> width multiple of ``dim``.
_LEVELS = (('encoder_level1', 1), ('encoder_level2', 2), ('encoder_level3', 4), ('latent', 8),
           ('decoder_level1', 2), ('refinement', 2))


def _count(state: Mapping[str, Any], prefix: str) -> int:
    """Number of ``prefix<i>.`` blocks."""
    heads = {int(k[len(prefix):].split('.', 1)[0]) for k in state
             if k.startswith(prefix) and k[len(prefix):].split('.', 1)[0].isdigit()}
    return max(heads) + 1 if heads else 0


def _solve_ffn(pairs: Sequence[Tuple[int, int]], preferred: float) -> float:
    """An ``f`` with ``int(c * f) == hidden`` for every (c, hidden) pair (short decimals first)."""
    def fits(f: float) -> bool:
        return all(int(c * f) == h for c, h in pairs)

    if fits(preferred):
        return preferred
    lo = max(h / c for c, h in pairs)
    hi = min((h + 1) / c for c, h in pairs)
    mid = (lo + hi) / 2
    for candidate in [round(mid, digits) for digits in range(1, 8)] + [lo, mid]:
        if fits(candidate):
            return candidate
    raise CheckpointMismatchError(f'cannot infer ffn_expansion_factor from hidden widths {pairs}')


def infer_arch_kwargs(ckpt: NetworkCheckpoint) -> Dict[str, Any]:
    """``DiffIRS{stage}Net`` constructor arguments that reproduce a checkpoint's network.

    Reads ``dim``, ``num_blocks``, ``num_refinement_blocks``, ``heads``,
    ``ffn_expansion_factor``, ``bias``, ``LayerNorm_type``, ``n_encoder_res`` (and for stage 2
    ``n_denoise_res`` and, from a stored official schedule, the diffusion settings) from the keys
    and shapes.

    Raises:
        CheckpointMismatchError: The stage, task or scale cannot be told from the keys.
    """
    from diffir_mm.archs.presets import PRESETS, preset_name

    sd, layout = ckpt.state, ckpt.layout
    if layout.stage is None or layout.task is None or layout.scale is None:
        raise CheckpointMismatchError(f'{ckpt.source}: cannot tell the stage/task/scale of the '
                                      f'network (found a {layout.describe()})')
    task, scale = layout.task, layout.scale
    preset = PRESETS[preset_name(task, scale)]
    embed = sd['dirformer.patch_embed.proj.weight'].shape
    unshuffle = 4 // scale if task == 'sr' else 1
    head = sd.get('dirformer.tail.2.weight' if task == 'sr' else 'dirformer.output.weight')
    levels = ('encoder_level1', 'encoder_level2', 'encoder_level3', 'latent')
    heads = []
    for name, default in zip(levels, preset['heads']):
        temperature = sd.get(f'dirformer.{name}.0.attn.temperature')
        heads.append(int(temperature.shape[0]) if temperature is not None else default)
    pairs = [(layout.dim * mult, int(sd[key].shape[1])) for name, mult in _LEVELS
             if (key := f'dirformer.{name}.0.ffn.project_out.weight') in sd]
    kwargs: Dict[str, Any] = dict(
        task=task, scale=scale, inp_channels=int(embed[1]) // unshuffle ** 2,
        out_channels=int(head.shape[0]) if head is not None else 3, dim=layout.dim,
        num_blocks=[_count(sd, f'dirformer.{name}.') for name in levels],
        num_refinement_blocks=_count(sd, 'dirformer.refinement.'), heads=heads,
        ffn_expansion_factor=_solve_ffn(pairs, preset['ffn_expansion_factor']) if pairs
        else preset['ffn_expansion_factor'],
        bias='dirformer.encoder_level1.0.attn.qkv.bias' in sd,
        LayerNorm_type='WithBias' if 'dirformer.encoder_level1.0.norm1.body.bias' in sd
        else 'BiasFree',
        n_encoder_res=sum(1 for k in sd if re.fullmatch(r'cpen\.E\.\d+\.body\.0\.weight', k)))
    if layout.stage == 2:
        kwargs['n_denoise_res'] = sum(
            1 for k in sd if re.fullmatch(r'denoiser\.resmlp\.\d+\.resmlp\.0\.weight', k))
        betas = ckpt.schedule.get('betas')
        if betas is not None and betas.numel() >= 2:
            betas = betas.double()
            kwargs.update(timesteps=int(betas.numel()), linear_start=round(float(betas[0]), 6),
                          linear_end=round(float(betas[-1]), 6))
    return kwargs
