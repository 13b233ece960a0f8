"""DiffIR checkpoints: read any format into our key names, check the fit, write mmengine files.

Our key names (``dirformer.*``, ``cpen.*``, ``denoiser.*`` -- the module tree of
:class:`~diffir_mm.archs.DiffIRS1Net` / :class:`~diffir_mm.archs.DiffIRS2Net`) are canonical.
Every caller (``load_official``, the editors, the converter tool, the inferencer, the restorer
and the CLI) goes through the same three steps:

1. :func:`read_components` / :func:`read_network` load a file once (``torch.load(...,
   weights_only=True)``), map it onto our keys once and read its :class:`Layout` (stage, task,
   scale, width) from the keys and shapes. Formats:

   * BasicSR ``.pth`` (deblurring, real-world and bicubic SR): ``{'params': sd, 'params_ema':
     sd}``; official keys ``G.*`` + ``E.*`` (stage 1) or ``G.*`` + ``condition.*`` + ``denoise.*``
     plus the duplicates ``diffusion.model.*`` / ``diffusion.condition.*`` (checked equal and
     dropped) and 12 schedule buffers ``diffusion.*`` (kept aside to check against the network).
   * LaMa / PyTorch-Lightning ``.ckpt`` (inpainting): ``state_dict`` with ``generator.*`` and,
     in stage-2 runs, the stage-1 teacher ``generatorS1.*`` (discriminator, losses and evaluators
     are ignored).
   * Our mmengine checkpoints: ``state_dict`` with ``generator.*``, ``generator_ema.*``,
     ``teacher.*`` in our naming.
   * A bare state dict in either naming (a ``module.`` prefix is dropped).

2. :func:`require` is the one decision whether a checkpoint fits what a caller wants (stage,
   task, scale -- or a built network, then also every key and shape and the diffusion schedule);
   it raises :class:`CheckpointMismatchError` with one line naming what the file holds.

3. :func:`load_network` loads a checked checkpoint strictly; :func:`write_checkpoint` writes the
   one mmengine layout our configs load (``params`` -> ``generator``, ``params_ema`` ->
   ``generator_ema``).

:func:`infer_arch_kwargs` reads the constructor arguments back from the keys and shapes, so a
checkpoint of any width builds its own network.
"""
from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass, field
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple, Union

import torch
from torch import nn

from .diffir_net import DiffIRS1Net, DiffIRS2Net
from .presets import PRESETS, build_diffir, preset_name

__all__ = ['CheckpointMismatchError', 'Layout', 'NetworkCheckpoint', 'read_checkpoint',
           'read_components', 'read_network', 'detect_layout', 'official_to_ours',
           'ours_to_official', 'infer_arch_kwargs', 'require', 'load_state_strict',
           'load_network', 'load_official', 'mmengine_checkpoint', 'write_checkpoint']

StateDict = Dict[str, torch.Tensor]
Source = Union[str, os.PathLike, Mapping[str, Any]]

#: Official top-level prefix -> ours, per stage.
_PREFIXES = {
    1: {'G.': 'dirformer.', 'E.': 'cpen.'},
    2: {'G.': 'dirformer.', 'condition.': 'cpen.', 'denoise.': 'denoiser.'},
}
#: Stage-2 duplicates of the official ``DDPM`` module: duplicate prefix -> original prefix.
_DUPLICATES = {'diffusion.model.': 'denoise.', 'diffusion.condition.': 'condition.'}
_SCHEDULE_BUFFERS = (
    'betas', 'alphas_cumprod', 'alphas_cumprod_prev', 'sqrt_alphas_cumprod',
    'sqrt_one_minus_alphas_cumprod', 'log_one_minus_alphas_cumprod', 'sqrt_recip_alphas_cumprod',
    'sqrt_recipm1_alphas_cumprod', 'posterior_variance', 'posterior_log_variance_clipped',
    'posterior_mean_coef1', 'posterior_mean_coef2')
#: mmengine state-dict prefix -> component, for our checkpoints and LaMa ones.
_COMPONENT_PREFIXES = (('generator.', 'generator'), ('generator_ema.', 'generator_ema'),
                       ('teacher.', 'teacher'), ('generatorS1.', 'teacher'))
#: DIRformer levels with transformer blocks -> width multiple of ``dim``.
_LEVELS = (('encoder_level1', 1), ('encoder_level2', 2), ('encoder_level3', 4), ('latent', 8),
           ('decoder_level1', 2), ('refinement', 2))
_SR_SCALE_OF_INPUT = {3: 4, 12: 2, 48: 1}  # DIRformer input channels of SR -> scale


class CheckpointMismatchError(ValueError):
    """A checkpoint does not fit the requested task / scale / stage / architecture."""


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
        """Constructor arguments of this network (:func:`infer_arch_kwargs`)."""
        return infer_arch_kwargs(self)


# ------------------------------------------------------------------------------------- reading
def read_checkpoint(source: Source) -> Mapping[str, Any]:
    """Load a checkpoint file safely (``weights_only=True``), or pass a mapping through."""
    if isinstance(source, Mapping):
        return source
    path = os.fspath(source)
    if not os.path.isfile(path):
        raise FileNotFoundError(f'checkpoint not found: {path}')
    try:
        loaded = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as err:  # noqa: BLE001 - report any unpickling failure in one line
        raise CheckpointMismatchError(
            f'cannot read checkpoint {path}: {type(err).__name__}: {str(err).splitlines()[0]}'
        ) from None
    if not isinstance(loaded, Mapping):
        raise CheckpointMismatchError(f'{path} is not a checkpoint dictionary')
    return loaded


def _source_name(source: Source) -> str:
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
            state, schedule = _from_official(state, where)
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


# ------------------------------------------------------------------------------ key mapping
def _from_official(sd: Mapping[str, torch.Tensor], where: str) -> Tuple[StateDict, StateDict]:
    """Official keys -> ours, and the schedule buffers; checks the stage-2 duplicates."""
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
        # unknown keys are kept, for the fit check to report them as unexpected
        out[key if prefix is None else mapping[prefix] + key[len(prefix):]] = value
    return out, schedule


def official_to_ours(sd: Mapping[str, torch.Tensor]) -> StateDict:
    """Map an official state dict onto our keys (duplicates checked and dropped, no buffers)."""
    return _from_official(sd, 'checkpoint')[0]


def ours_to_official(sd: Mapping[str, torch.Tensor], with_duplicates: bool = False,
                     net: Optional[DiffIRS2Net] = None) -> StateDict:
    """Map our keys to the official naming (export, and tests against released layouts).

    Args:
        sd: Our state dict (``dirformer.*``, ``cpen.*`` [, ``denoiser.*``]).
        with_duplicates: For stage 2, also emit the official ``diffusion.model.*`` and
            ``diffusion.condition.*`` duplicates and, with ``net``, the 12 schedule buffers.
        net: Stage-2 network providing the schedule.
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
            out.update({f'diffusion.{k}': v for k, v in _official_schedule(net).items()})
    return out


def _official_schedule(net: DiffIRS2Net) -> StateDict:
    """All 12 official schedule buffers (float32), derived from the network's betas."""
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


# ------------------------------------------------------------------ architecture from shapes
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
    and shapes. Released checkpoints give exactly their preset values.
    """
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


# ------------------------------------------------------------------------------ the fit check
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
    for name in _SCHEDULE_BUFFERS:
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
        ckpt: From :func:`read_network` / :func:`read_components`.
        stage: Wanted stage (1 or 2); None accepts either.
        task: Wanted task (``'deblur'``, ``'sr'``, ``'inpaint'``); None accepts any.
        scale: Wanted SR factor (checked for ``task='sr'`` only).
        net: A built network: stage, task and scale are taken from it, and every key, shape and
            the stored diffusion schedule must fit it too.
        needed_by: Who asks, for the message (``'diffir_sr_s2.py'``); default "was requested".

    Raises:
        CheckpointMismatchError: ``"<source> holds a stage-1 deblur model, dim=48, but a
            stage-2 sr x4 model was requested"`` and the like.
    """
    if net is not None:
        stage = 2 if isinstance(net, DiffIRS2Net) or hasattr(net, 'denoiser') else 1
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
                  **official_kwargs: Any) -> Union[DiffIRS1Net, DiffIRS2Net]:
    """Build the network of ``task``/``stage``/``scale`` and load a checkpoint into it.

    Args:
        source: Path of a released ``.pth``/``.ckpt`` file or one of ours, or an already loaded
            checkpoint or state dict (either naming).
        task: ``'deblur'``, ``'sr'`` or ``'inpaint'``.
        stage: 1 (``net(lq, gt)``) or 2 (``net(lq)``).
        scale: SR factor (4, 2 or 1).
        big: Inpainting only: the 'big' Places-Challenge model.
        component: ``'generator'`` (EMA weights preferred), or ``'teacher'`` for the stage-1
            teacher of LaMa stage-2 files and of ours.
        **official_kwargs: Official constructor arguments (``dim``, ``num_blocks``, ...);
            omitted ones take the released preset.

    Returns:
        The network in eval mode.

    Raises:
        CheckpointMismatchError: The checkpoint is of another task, scale, stage or size.
    """
    net = build_diffir(preset_name(task, scale, big), stage, **official_kwargs)
    return load_network(net, read_network(source, component)).eval()


# ------------------------------------------------------------------------------------ writing
def mmengine_checkpoint(networks: Mapping[str, NetworkCheckpoint],
                        meta: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
    """The mmengine checkpoint our editors load: ``{'state_dict': ..., 'meta': {'diffir_mm'}}``.

    Args:
        networks: ``'generator'`` and/or ``'generator_ema'`` (at least one), optional
            ``'teacher'`` -- as :func:`read_components` returns them. A missing EMA copy is the
            generator itself (an EMA that has not moved yet) and vice versa, so that evaluation,
            which uses ``generator_ema``, never runs a random initialisation.
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


def write_checkpoint(path: Union[str, os.PathLike], networks: Mapping[str, NetworkCheckpoint],
                     meta: Optional[Mapping[str, Any]] = None,
                     overwrite: bool = False) -> Dict[str, Any]:
    """Write :func:`mmengine_checkpoint` atomically (temporary file + ``os.replace``).

    Returns:
        The checkpoint written.

    Raises:
        FileExistsError: ``path`` exists and ``overwrite`` is False.
    """
    path = os.fspath(path)
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f'{path} exists; not overwritten')
    ckpt = mmengine_checkpoint(networks, meta)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f'.{os.path.basename(path)}.', suffix='.tmp', dir=folder)
    try:
        with os.fdopen(fd, 'wb') as f:
            torch.save(ckpt, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return ckpt

