"""A reusable DiffIR restorer: network + device + precision + tiling + seeding.

Three ways to get one::

    Restorer.from_config('configs/diffir_sr_s2.py', 'work_dirs/iter_400000.pth')   # (a)
    Restorer.from_checkpoint('DiffIRS2-x4.pth', task='sr')       # (b) official or ours
    Restorer(net)                                                 # (c) an already built network

Checkpoints in any format :func:`diffir_mm.archs.extract_network_state` reads (released BasicSR
``.pth``, LaMa ``.ckpt``, bare state dicts, our mmengine checkpoints -- EMA weights preferred)
are accepted. The architecture is read from the checkpoint's keys and shapes
(:func:`infer_arch_kwargs`), so released models and any re-sized model load alike; a requested
``task`` (``'deblur'``, ``'sr'``/``'sr_x4'``, ``'sr_x2'``, ``'sr_x1'``, ``'inpaint'``,
``'inpaint_big'``) is checked against what the checkpoint holds
(:class:`~diffir_mm.archs.CheckpointMismatchError` otherwise).

Seeding: DiffIR's only randomness is the diffusion start vector ``x_T``. Every image gets its own
``torch.Generator`` seeded with the seed (the same seed for each image of a batch unless a list is
given), drawn on the CPU, so the same seed gives the same output on any batch composition and
device, and ``Restorer(net).restore_tensor(x, seed=s)`` equals
``net(x, generator=torch.Generator().manual_seed(s))`` for an untiled image under the prior budget.

The mmagic inferencer can reuse the pieces: :func:`~diffir_mm.inference.tiling.restore_tiled`
on its model's generator, :func:`~diffir_mm.inference.io.read_image` /
:func:`~diffir_mm.inference.io.write_image`, or a ``Restorer(generator, input_norm=(mean, std))``
that matches its data preprocessor.

This module imports neither mmagic, mmcv nor mmengine (``mmengine.Config`` is imported lazily by
:meth:`Restorer.from_config` only).
"""
from __future__ import annotations

import copy
import os
import re
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import nn

from diffir_mm.archs import (IPR_DIM, PRESETS, CheckpointMismatchError, DiffIRS2Net,
                             detect_layout, extract_network_state, official_to_ours,
                             read_checkpoint)
from diffir_mm.archs.official import load_state_strict

from .precision import normalize_precision
from .tiling import DEFAULT_PRIOR_MAX_SIDE, DEFAULT_TILE_OVERLAP, ProgressFn, restore_tiled

__all__ = ['Restorer', 'TASK_PRESETS', 'resolve_task', 'infer_arch_kwargs',
           'network_from_checkpoint', 'network_from_config', 'load_network_weights']

#: Task names accepted by the restorer / CLI -> preset name.
TASK_PRESETS = {
    'deblur': 'deblur', 'sr': 'sr_x4', 'sr_x4': 'sr_x4', 'sr_x2': 'sr_x2', 'sr_x1': 'sr_x1',
    'inpaint': 'inpaint', 'inpaint_big': 'inpaint_big',
}
_LEVELS = (('encoder_level1', 1), ('encoder_level2', 2), ('encoder_level3', 4), ('latent', 8),
           ('decoder_level1', 2), ('refinement', 2))

PathOrMapping = Union[str, os.PathLike, Mapping[str, Any]]


def resolve_task(task: str) -> str:
    """Preset name for a task name (``'sr'`` means x4)."""
    name = TASK_PRESETS.get(str(task).lower())
    if name is None:
        raise ValueError(f'unknown task {task!r}; choose from {sorted(TASK_PRESETS)}')
    return name


def _describe_preset(preset: str) -> str:
    p = PRESETS[preset]
    return f"{p['task']} x{p['scale']}" if p['task'] == 'sr' else p['task']


def _count(sd: Mapping[str, Any], prefix: str) -> int:
    idx = set()
    for key in sd:
        if key.startswith(prefix):
            head = key[len(prefix):].split('.', 1)[0]
            if head.isdigit():
                idx.add(int(head))
    return max(idx) + 1 if idx else 0


def _solve_ffn(pairs: Sequence[Tuple[int, int]], preferred: Optional[float]) -> float:
    """An ``f`` with ``int(c * f) == hidden`` for every (c, hidden) pair."""
    def fits(f: float) -> bool:
        return all(int(c * f) == h for c, h in pairs)

    if preferred is not None and fits(preferred):
        return preferred
    lo = max(h / c for c, h in pairs)
    hi = min((h + 1) / c for c, h in pairs)
    mid = (lo + hi) / 2
    for digits in range(1, 8):
        if fits(round(mid, digits)):
            return round(mid, digits)
    for f in (lo, mid):
        if fits(f):
            return f
    raise CheckpointMismatchError(f'cannot infer ffn_expansion_factor from hidden widths {pairs}')


def infer_arch_kwargs(sd: Mapping[str, Any]) -> Dict[str, Any]:
    """``DiffIRS2Net`` constructor arguments that reproduce an official-layout stage-2 state dict.

    Reads ``dim``, ``num_blocks``, ``num_refinement_blocks``, ``heads``,
    ``ffn_expansion_factor``, ``bias``, ``LayerNorm_type``, ``n_encoder_res``,
    ``n_denoise_res`` and (from the stored schedule, when present) the diffusion settings from
    the keys and shapes. Released checkpoints give exactly their preset values.
    """
    layout = detect_layout(sd)
    if layout.stage != 2:
        what = 'a stage-1 model' if layout.stage == 1 else 'no stage-2 prior network'
        raise CheckpointMismatchError(f'checkpoint holds {what}; inference needs a stage-2 '
                                      'checkpoint (CPEN_S2 + denoiser)')
    if layout.task is None or (layout.task == 'sr' and layout.scale is None):
        raise CheckpointMismatchError('cannot tell the task/scale of the checkpoint from its '
                                      'DIRformer head')
    task, scale = layout.task, layout.scale or 1
    embed = sd['G.patch_embed.proj.weight'].shape
    dim = int(embed[0])
    unshuffle = 4 // scale if task == 'sr' else 1
    preset = PRESETS[{'deblur': 'deblur', 'inpaint': 'inpaint'}.get(task, f'sr_x{scale}')]
    head = sd.get('G.tail.2.weight') if task == 'sr' else sd.get('G.output.weight')
    num_blocks = [_count(sd, f'G.{name}.') for name in
                  ('encoder_level1', 'encoder_level2', 'encoder_level3', 'latent')]
    heads = []
    for i, name in enumerate(('encoder_level1', 'encoder_level2', 'encoder_level3', 'latent')):
        t = sd.get(f'G.{name}.0.attn.temperature')
        heads.append(int(t.shape[0]) if t is not None else list(preset['heads'])[i])
    pairs = []
    for name, mult in _LEVELS:
        w = sd.get(f'G.{name}.0.ffn.project_out.weight')
        if w is not None:
            pairs.append((dim * mult, int(w.shape[1])))
    kwargs: Dict[str, Any] = dict(
        task=task, scale=scale, inp_channels=int(embed[1]) // unshuffle ** 2,
        out_channels=int(head.shape[0]) if head is not None else 3, dim=dim,
        num_blocks=num_blocks, num_refinement_blocks=_count(sd, 'G.refinement.'), heads=heads,
        ffn_expansion_factor=_solve_ffn(pairs, preset['ffn_expansion_factor']) if pairs
        else preset['ffn_expansion_factor'],
        bias='G.encoder_level1.0.attn.qkv.bias' in sd,
        LayerNorm_type='WithBias' if 'G.encoder_level1.0.norm1.body.bias' in sd else 'BiasFree',
        n_encoder_res=sum(1 for k in sd if k.startswith('condition.E.')
                          and k.endswith('.body.0.weight')),
        n_denoise_res=sum(1 for k in sd
                          if re.fullmatch(r'denoise\.resmlp\.\d+\.resmlp\.0\.weight', k)))
    betas = sd.get('diffusion.betas')
    if betas is not None and betas.numel() >= 2:
        betas = betas.double()
        kwargs.update(timesteps=int(betas.numel()), linear_start=round(float(betas[0]), 6),
                      linear_end=round(float(betas[-1]), 6))
    return kwargs


def _check_task(sd: Mapping[str, Any], task: Optional[str], source: str = 'checkpoint') -> None:
    if task is None:
        return
    preset = resolve_task(task)
    found = detect_layout(sd)
    want = PRESETS[preset]
    ok = found.task == want['task'] and (want['task'] != 'sr' or found.scale == want['scale'])
    if not ok:
        raise CheckpointMismatchError(
            f'{source} holds a {found.describe()}, but task {task!r} '
            f'({_describe_preset(preset)}) was requested')


def load_network_weights(net: nn.Module, sd: Mapping[str, torch.Tensor],
                         source: str = 'checkpoint') -> nn.Module:
    """Load an official-layout stage-2 state dict into ``net`` with one-line error messages."""
    found = detect_layout(sd)
    want_scale = net.scale if net.task == 'sr' else None
    if found.stage != 2:
        raise CheckpointMismatchError(f'{source} holds a {found.describe()}; inference needs a '
                                      'stage-2 checkpoint')
    if found.task != net.task or (net.task == 'sr' and found.scale != want_scale):
        want = f'sr x{want_scale}' if net.task == 'sr' else net.task
        raise CheckpointMismatchError(f'{source} holds a {found.describe()}, but the network is '
                                      f'a stage-2 {want} model')
    ours = official_to_ours(sd, 2, net)
    load_state_strict(net, ours, f'{source} ({found.describe()})')
    return net.eval()


def network_from_checkpoint(checkpoint: PathOrMapping, task: Optional[str] = None,
                            **overrides: Any) -> DiffIRS2Net:
    """Build a stage-2 network shaped like ``checkpoint`` and load it.

    Args:
        checkpoint: Path or loaded checkpoint (any supported format).
        task: Expected task (checked); ``None`` accepts what the checkpoint holds.
        **overrides: Constructor arguments that cannot be read from the weights.
    """
    name = os.fspath(checkpoint) if isinstance(checkpoint, (str, os.PathLike)) else 'checkpoint'
    sd = extract_network_state(read_checkpoint(checkpoint))
    _check_task(sd, task, source=f'checkpoint {name}' if name != 'checkpoint' else name)
    kwargs = infer_arch_kwargs(sd)
    kwargs.update(overrides)
    net = DiffIRS2Net(**kwargs)
    return load_network_weights(net, sd, source=f'checkpoint {name}'
                                if name != 'checkpoint' else name)


def _config_generator(config: Any) -> Tuple[Dict[str, Any], Optional[Tuple[Any, Any]]]:
    if isinstance(config, (str, os.PathLike)):
        path = os.fspath(config)
        if not os.path.isfile(path):
            raise FileNotFoundError(f'config not found: {path}')
        from mmengine.config import Config  # lazy: the inference package stays torch-only
        config = Config.fromfile(path, import_custom_modules=False)
    model = config['model'] if 'model' in config else config
    gen = model.get('generator') if hasattr(model, 'get') else None
    if gen is None:
        raise ValueError('config has no model.generator')
    gen = gen.to_dict() if hasattr(gen, 'to_dict') else copy.deepcopy(dict(gen))
    norm = None
    pre = model.get('data_preprocessor') if hasattr(model, 'get') else None
    if pre is not None and pre.get('mean') is not None and pre.get('std') is not None:
        norm = (pre['mean'], pre['std'])
    return gen, norm


def network_from_config(config: Any, checkpoint: Optional[PathOrMapping] = None,
                        random_init: bool = False) -> Tuple[DiffIRS2Net, Optional[Tuple]]:
    """Build ``model.generator`` of an mmengine config (path or Config/dict) and load weights.

    Returns:
        The network (eval mode) and the ``(mean, std)`` of the config's data preprocessor (or
        None).
    """
    gen, norm = _config_generator(config)
    kind = str(gen.pop('type', 'DiffIRS2Net')).split('.')[-1]
    if kind != 'DiffIRS2Net':
        raise ValueError(f'config generator type {kind!r} is not a stage-2 DiffIR network '
                         '(DiffIRS2Net)')
    net = DiffIRS2Net(**gen)
    if checkpoint is not None:
        name = os.fspath(checkpoint) if isinstance(checkpoint, (str, os.PathLike)) else 'checkpoint'
        sd = extract_network_state(read_checkpoint(checkpoint))
        load_network_weights(net, sd, source=f'checkpoint {name}')
    elif not random_init:
        raise ValueError('a checkpoint is required (random_init=True only for tests)')
    return net.eval(), norm


def _as_norm(values: Any, channels: int) -> torch.Tensor:
    t = torch.as_tensor(values, dtype=torch.float32).flatten()
    if t.numel() == 1:
        t = t.repeat(channels)
    return t.view(1, -1, 1, 1)


class Restorer:
    """Restore images with a stage-2 DiffIR network.

    Args:
        network: A ``DiffIRS2Net`` (or compatible) module.
        device: ``'cpu'``, ``'cuda'``, ``'cuda:1'``... or ``'auto'`` / None (CUDA when available).
        precision: ``'fp32'``, ``'bf16'`` or ``'fp16'`` (see :mod:`.precision`).
        tile: Tile side in input pixels (``None``/0: whole image at once).
        tile_overlap: Overlap between tiles, input pixels.
        tile_batch: Tiles per forward.
        seed: Default seed (``None``: a fresh random start vector per call).
        prior_max_side: Budget of the global prior (:func:`.tiling.prior_input`).
        fallback: fp32 recompute on non-finite reduced-precision output (else raise).
        input_norm: ``(mean, std)`` on the 0..255 scale applied before the network (as an mmagic
            data preprocessor); default ``(0, 255)`` = the [0, 1] input of the official models.
    """

    def __init__(self, network: nn.Module, device: Union[str, torch.device, None] = 'auto',
                 precision: str = 'fp32', tile: Optional[int] = None,
                 tile_overlap: int = DEFAULT_TILE_OVERLAP, tile_batch: int = 1,
                 seed: Optional[int] = 0, prior_max_side: Optional[int] = DEFAULT_PRIOR_MAX_SIDE,
                 fallback: bool = True, input_norm: Optional[Tuple[Any, Any]] = None) -> None:
        if not hasattr(network, 'estimate_prior') or not hasattr(network, 'restore'):
            raise TypeError('Restorer needs a stage-2 DiffIR network (estimate_prior/restore); '
                            f'got {type(network).__name__}')
        if device is None or str(device) == 'auto':
            device = 'cuda' if torch.cuda.is_available() else 'cpu'
        self.device = torch.device(device)
        if self.device.type == 'cuda' and not torch.cuda.is_available():
            raise RuntimeError(f'device {device!r} requested but CUDA is not available')
        self.network = network.to(self.device).eval()
        self.precision = normalize_precision(precision)
        self.tile = tile or None
        self.tile_overlap = int(tile_overlap)
        self.tile_batch = int(tile_batch)
        self.seed = seed
        self.prior_max_side = prior_max_side
        self.fallback = fallback
        channels = 3
        mean, std = input_norm if input_norm is not None else (0.0, 255.0)
        self._mean = _as_norm(mean, channels).to(self.device) / 255.0
        self._std = _as_norm(std, channels).to(self.device) / 255.0

    # ------------------------------------------------------------------ construction helpers
    @classmethod
    def from_checkpoint(cls, checkpoint: PathOrMapping, task: Optional[str] = None,
                        **kwargs: Any) -> 'Restorer':
        """(b) From a checkpoint (official or ours); ``task`` is checked when given."""
        return cls(network_from_checkpoint(checkpoint, task=task), **kwargs)

    @classmethod
    def from_preset(cls, task: str, checkpoint: Optional[PathOrMapping] = None,
                    random_init: bool = False, **kwargs: Any) -> 'Restorer':
        """(b) From a task/preset name and a checkpoint; ``random_init`` builds the released
        architecture with random weights (testing and benchmarking only)."""
        preset = resolve_task(task)
        if checkpoint is not None:
            return cls.from_checkpoint(checkpoint, task=task, **kwargs)
        if not random_init:
            raise ValueError('a checkpoint is required (random_init=True only for tests)')
        from diffir_mm.archs import build_diffir
        return cls(build_diffir(preset, stage=2).eval(), **kwargs)

    @classmethod
    def from_config(cls, config: Any, checkpoint: Optional[PathOrMapping] = None,
                    random_init: bool = False, **kwargs: Any) -> 'Restorer':
        """(a) From an mmengine config (``model.generator``) and a checkpoint."""
        net, norm = network_from_config(config, checkpoint, random_init=random_init)
        kwargs.setdefault('input_norm', norm)
        return cls(net, **kwargs)

    # ------------------------------------------------------------------ properties
    @property
    def task(self) -> str:
        """'deblur', 'sr' or 'inpaint'."""
        return getattr(self.network, 'task', 'deblur')

    @property
    def scale(self) -> int:
        """Output size / input size."""
        return int(getattr(self.network, 'scale', 1))

    @property
    def input_multiple(self) -> int:
        """Inputs are padded internally to multiples of this."""
        return int(getattr(self.network, 'input_multiple', 1))

    def describe(self) -> str:
        """One-line summary."""
        n = sum(p.numel() for p in self.network.parameters())
        task = f'sr x{self.scale}' if self.task == 'sr' else self.task
        tile = f'tile {self.tile}/{self.tile_overlap}' if self.tile else 'no tiling'
        return (f'DiffIR {task} ({n / 1e6:.2f} M params), {self.device}, {self.precision}, '
                f'{tile}')

    # ------------------------------------------------------------------ restoration
    def make_noise(self, batch: int, seed: Union[int, Sequence[Optional[int]], None] = None
                   ) -> Optional[torch.Tensor]:
        """Start vectors ``x_T`` (batch, 256): one CPU generator per image, seeded from ``seed``.

        ``seed`` defaults to the restorer's seed; ``None`` there means unseeded (random).
        """
        seeds = seed if isinstance(seed, (list, tuple)) else [seed] * batch
        if len(seeds) != batch:
            raise ValueError(f'{len(seeds)} seeds for {batch} images')
        rows = []
        for s in seeds:
            gen = torch.Generator()
            if s is None:
                gen.seed()
            else:
                gen.manual_seed(int(s))
            rows.append(torch.randn(1, IPR_DIM, generator=gen))
        return torch.cat(rows).to(self.device)

    def restore_tensor(self, lq: torch.Tensor, mask: Optional[torch.Tensor] = None,
                       seed: Union[int, Sequence[Optional[int]], None, str] = 'default',
                       progress: Optional[ProgressFn] = None) -> torch.Tensor:
        """Restore a batch (B, 3, H, W) of RGB images in [0, 1].

        Args:
            lq: Degraded images (the LR images for SR).
            mask: Inpainting only: (B, 1, H, W), 1 = hole. The output is composited as
                ``mask * prediction + (1 - mask) * lq`` (as the official predictor).
            seed: Seed (or one per image); defaults to the restorer's seed.
            progress: ``progress(done, total)`` per tile batch.

        Returns:
            (B, 3, H·scale, W·scale) float32 on the CPU (not clamped).
        """
        if lq.dim() == 3:
            lq = lq[None]
        if lq.dim() != 4 or lq.shape[1] != 3:
            raise ValueError(f'expected (B, 3, H, W) RGB images, got {tuple(lq.shape)}')
        seed = self.seed if isinstance(seed, str) and seed == 'default' else seed
        # standard NCHW layout: convolutions may round differently on permuted (NHWC) strides
        x = lq.to(self.device, torch.float32).contiguous()
        net_in = (x - self._mean) / self._std
        m = None
        if self.task == 'inpaint':
            if mask is None:
                raise ValueError('inpainting needs a mask (1 = hole)')
            m = mask.to(self.device, torch.float32)
            if m.dim() == 3:
                m = m[None]
            m = (m > 0.5).float()
            net_in = torch.cat([net_in * (1 - m), m], dim=1)
        noise = self.make_noise(x.shape[0], seed)
        with torch.inference_mode():
            out = restore_tiled(self.network, net_in, noise=noise, tile=self.tile,
                                tile_overlap=self.tile_overlap, tile_batch=self.tile_batch,
                                prior_max_side=self.prior_max_side, precision=self.precision,
                                fallback=self.fallback, progress=progress)
            out = out * self._std + self._mean
            if m is not None:
                out = m * out + (1 - m) * x
        return out.float().cpu()

    @staticmethod
    def _to_unit(img: np.ndarray) -> np.ndarray:
        img = np.asarray(img)
        if img.dtype == np.uint8:
            return img.astype(np.float32) / 255.0
        if img.dtype == np.uint16:
            return img.astype(np.float32) / 65535.0
        return img.astype(np.float32, copy=False)

    def restore_batch(self, images: Sequence[np.ndarray],
                      masks: Optional[Sequence[np.ndarray]] = None,
                      seed: Union[int, Sequence[Optional[int]], None, str] = 'default',
                      progress: Optional[ProgressFn] = None) -> List[np.ndarray]:
        """Restore same-size (H, W, 3) RGB arrays (float [0, 1], uint8 or uint16).

        Returns:
            float32 (H·s, W·s, 3) arrays (not clamped).
        """
        if not images:
            return []
        arrays = [self._to_unit(im) for im in images]
        shape = arrays[0].shape
        if any(a.shape != shape for a in arrays) or len(shape) != 3 or shape[2] != 3:
            raise ValueError('restore_batch needs (H, W, 3) arrays of one size; got '
                             f'{sorted({a.shape for a in arrays})}')
        lq = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2)
        mask_t = None
        if masks is not None:
            mask_t = torch.from_numpy(np.stack([self._to_unit(m).reshape(shape[:2])
                                                for m in masks]))[:, None]
        out = self.restore_tensor(lq, mask=mask_t, seed=seed, progress=progress)
        return [o for o in out.permute(0, 2, 3, 1).numpy()]

    def restore(self, image: np.ndarray, mask: Optional[np.ndarray] = None,
                seed: Union[int, None, str] = 'default',
                progress: Optional[ProgressFn] = None) -> np.ndarray:
        """Restore one (H, W, 3) RGB array; see :meth:`restore_batch`."""
        masks = None if mask is None else [mask]
        return self.restore_batch([image], masks=masks, seed=seed, progress=progress)[0]

    __call__ = restore
