"""A reusable DiffIR restorer: network + device + precision + tiling + seeding.

Three ways to get one::

    Restorer.from_config('configs/diffir_sr_s2.py', 'work_dirs/iter_400000.pth')   # (a)
    Restorer.from_checkpoint('DiffIRS2-x4.pth', task='sr', scale=4)  # (b) official or ours
    Restorer(net)                                                     # (c) an already built network

Checkpoints are read by :mod:`diffir_mm.checkpoint` (released BasicSR ``.pth``, LaMa ``.ckpt``,
bare state dicts, our converted and training checkpoints, ``.safetensors`` -- EMA weights
preferred), once per file.
The architecture is read from the checkpoint's keys and shapes
(:func:`~diffir_mm.checkpoint.infer_arch_kwargs`), so released models and any re-sized model load
alike; a requested ``task`` / ``scale`` is checked by :func:`~diffir_mm.checkpoint.require`
(:class:`~diffir_mm.checkpoint.CheckpointMismatchError` otherwise).

Seeding: DiffIR's only randomness is the diffusion start vector ``x_T``. ``seed`` is an int (every
image gets its own CPU ``torch.Generator`` seeded with it, so the same seed gives the same output
on any batch composition and device), a list of ints (one per image), a ``torch.Generator``
(all start vectors drawn from it, in order), or None: the restorer's own seed in the
``restore*`` calls, a fresh random vector in :meth:`Restorer.make_noise` and for
``Restorer(seed=None)``. ``Restorer(net).restore_tensor(x, seed=s)`` equals
``net(x, generator=torch.Generator().manual_seed(s))`` for an untiled image in fp32 (the CPU's
``precision='auto'``; on CUDA ``'auto'`` is bf16, see :mod:`.precision`).

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
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import nn

from diffir_mm.archs import IPR_DIM, DiffIRS2Net, build_diffir, preset_name
from diffir_mm.checkpoint import NetworkCheckpoint, load_network, read_network, require

from .compilation import compile_blocks, resolve_compile
from .inpainting import MODULO, hole_batch, hole_mask, pad_symmetric
from .precision import normalize_precision, resolve_precision
from .tiling import DEFAULT_TILE_OVERLAP, ProgressFn, restore_tiled

__all__ = ['Restorer', 'network_from_checkpoint', 'network_from_config']

CheckpointSource = Union[str, os.PathLike, Dict[str, Any], NetworkCheckpoint]
#: A seed: int, one int per image, a generator, or None (see the module notes).
Seed = Union[int, Sequence[int], torch.Generator, None]


def network_from_checkpoint(checkpoint: CheckpointSource, task: Optional[str] = None,
                            scale: int = 4, **overrides: Any) -> DiffIRS2Net:
    """Build a stage-2 network shaped like ``checkpoint`` and load it (eval mode).

    Args:
        checkpoint: Path, loaded checkpoint or :class:`~diffir_mm.checkpoint.NetworkCheckpoint`.
        task: Expected task (checked with ``scale``); ``None`` accepts what the checkpoint holds.
        scale: Expected SR factor when ``task='sr'``.
        **overrides: Constructor arguments that cannot be read from the weights.
    """
    ckpt = read_network(checkpoint)
    require(ckpt, stage=2, task=task, scale=scale)
    net = DiffIRS2Net(**dict(ckpt.arch_kwargs(), **overrides))
    return load_network(net, ckpt).eval()


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


def network_from_config(config: Any, checkpoint: Optional[CheckpointSource] = None,
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
        load_network(net, read_network(checkpoint))
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
        precision: ``'auto'`` (bf16 on CUDA, fp32 on the CPU), ``'fp32'``, ``'bf16'`` or
            ``'fp16'`` (see :mod:`.precision`).
        tile: Tile side in input pixels (``None``/0: whole image at once).
        tile_overlap: Overlap between tiles, input pixels.
        tile_batch: Tiles per forward.
        seed: Default seed (int, ``torch.Generator`` or ``None``: a fresh random start vector
            per call).
        prior_max_side: Budget of the global prior (:func:`.tiling.prior_input`); None: only
            runs cut into several tiles are budgeted (:func:`.tiling.restore_tiled`), so an
            untiled run is the official inference; 0: never downscale.
        fallback: fp32 recompute on non-finite reduced-precision output (else raise).
        input_norm: ``(mean, std)`` on the 0..255 scale applied before the network (as an mmagic
            data preprocessor); default ``(0, 255)`` = the [0, 1] input of the official models.
        compile: ``torch.compile`` the DIRformer's blocks in place (:mod:`.compilation`):
            ``'auto'`` (per device type, currently never), ``'on'``/True or ``'off'``/False.
    """

    def __init__(self, network: nn.Module, device: Union[str, torch.device, None] = 'auto',
                 precision: str = 'auto', tile: Optional[int] = None,
                 tile_overlap: int = DEFAULT_TILE_OVERLAP, tile_batch: int = 1,
                 seed: Seed = 0, prior_max_side: Optional[int] = None,
                 fallback: bool = True, input_norm: Optional[Tuple[Any, Any]] = None,
                 compile: Union[bool, str] = 'auto') -> None:
        if not hasattr(network, 'estimate_prior') or not hasattr(network, 'restore'):
            raise TypeError('Restorer needs a stage-2 DiffIR network (estimate_prior/restore); '
                            f'got {type(network).__name__}')
        if device is None or str(device) == 'auto':
            device = 'cuda' if torch.cuda.is_available() else 'cpu'
        self.device = torch.device(device)
        if self.device.type == 'cuda' and not torch.cuda.is_available():
            raise RuntimeError(f'device {device!r} requested but CUDA is not available')
        self.network = network.to(self.device).eval()
        self.auto_precision = normalize_precision(precision) == 'auto'
        self.precision = resolve_precision(precision, self.device)
        self.compiled = resolve_compile(compile, self.device)
        if self.compiled:
            compile_blocks(self.network)
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
    def from_checkpoint(cls, checkpoint: CheckpointSource, task: Optional[str] = None,
                        scale: int = 4, **kwargs: Any) -> 'Restorer':
        """(b) From a checkpoint (official or ours); ``task`` / ``scale`` are checked when given."""
        return cls(network_from_checkpoint(checkpoint, task=task, scale=scale), **kwargs)

    @classmethod
    def from_preset(cls, task: str, scale: int = 4, big: bool = False,
                    checkpoint: Optional[CheckpointSource] = None, random_init: bool = False,
                    **kwargs: Any) -> 'Restorer':
        """(b) From a task name and a checkpoint; ``random_init`` builds the released
        architecture with random weights (testing and benchmarking only)."""
        preset = preset_name(task, scale, big)
        if checkpoint is not None:
            return cls.from_checkpoint(checkpoint, task=task, scale=scale, **kwargs)
        if not random_init:
            raise ValueError('a checkpoint is required (random_init=True only for tests)')
        return cls(build_diffir(preset, stage=2).eval(), **kwargs)

    @classmethod
    def from_config(cls, config: Any, checkpoint: Optional[CheckpointSource] = None,
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
        precision = f'{self.precision} (auto)' if self.auto_precision else self.precision
        compiled = ', compiled' if self.compiled else ''
        return (f'DiffIR {task} ({n / 1e6:.2f} M params), {self.device}, {precision}{compiled}, '
                f'{tile}')

    # ------------------------------------------------------------------ restoration
    def make_noise(self, batch: int, seed: Seed = None) -> torch.Tensor:
        """Start vectors ``x_T`` (batch, 256), drawn on the CPU (see the module notes on seeds).

        Args:
            batch: Number of images.
            seed: An int (one generator per image, each seeded with it), one int per image, a
                ``torch.Generator`` (drawn from in order), or None (random).
        """
        if isinstance(seed, torch.Generator):
            return torch.randn(batch, IPR_DIM, generator=seed).to(self.device)
        seeds = list(seed) if isinstance(seed, (list, tuple)) else [seed] * batch
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
                       seed: Seed = None,
                       progress: Optional[ProgressFn] = None) -> torch.Tensor:
        """Restore a batch (B, 3, H, W) of RGB images in [0, 1].

        Args:
            lq: Degraded images (the LR images for SR).
            mask: Inpainting only: (B, 1, H, W) (or (H, W), (B, H, W)); every value > 0 is
                a hole (the official rule, :mod:`.inpainting`). Image and mask are padded
                symmetrically to 8 and the output composited as
                ``mask * prediction + (1 - mask) * lq`` (as the official predictor).
            seed: Seed (see the module notes); None: the restorer's seed.
            progress: ``progress(done, total)`` per tile batch.

        Returns:
            (B, 3, H·scale, W·scale) float32 on the CPU (not clamped).
        """
        if lq.dim() == 3:
            lq = lq[None]
        if lq.dim() != 4 or lq.shape[1] != 3:
            raise ValueError(f'expected (B, 3, H, W) RGB images, got {tuple(lq.shape)}')
        seed = self.seed if seed is None else seed
        # standard NCHW layout: convolutions may round differently on permuted (NHWC) strides
        x = lq.to(self.device, torch.float32).contiguous()
        h, w = x.shape[-2:]
        m = None
        if self.task == 'inpaint':
            m = self._hole_tensor(mask, x)
            # as the official predictor: symmetric padding to 8, then the network sees no pad
            x = pad_symmetric(x, max(MODULO, self.input_multiple))
            m = pad_symmetric(m, max(MODULO, self.input_multiple))
            net_in = torch.cat([(x - self._mean) / self._std * (1 - m), m], dim=1)
        elif mask is not None:
            raise ValueError(f'a mask only applies to inpainting (this model: {self.task})')
        else:
            net_in = (x - self._mean) / self._std
        noise = self.make_noise(x.shape[0], seed)
        with torch.inference_mode():
            out = restore_tiled(self.network, net_in, noise=noise, tile=self.tile,
                                tile_overlap=self.tile_overlap, tile_batch=self.tile_batch,
                                prior_max_side=self.prior_max_side, precision=self.precision,
                                fallback=self.fallback, progress=progress)
            out = out * self._std + self._mean
            if m is not None:
                out = (m * out + (1 - m) * x)[..., :h, :w]
        return out.float().cpu()

    def _hole_tensor(self, mask: Optional[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        """The (B, 1, H, W) 0/1 float holes of ``mask`` for images ``x`` (official: > 0)."""
        if mask is None:
            raise ValueError('inpainting needs a mask (non-zero = hole)')
        return hole_batch(mask, x)

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
                      seed: Seed = None,
                      progress: Optional[ProgressFn] = None) -> List[np.ndarray]:
        """Restore same-size (H, W, 3) RGB arrays (float [0, 1], uint8 or uint16).

        Args:
            images: The images.
            masks: Inpainting: one mask per image, of the image's size, any value type;
                holes by the official rule (:func:`.inpainting.hole_mask`: luma > 0).
            seed, progress: As :meth:`restore_tensor`.

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
            if len(masks) != len(arrays):
                raise ValueError(f'{len(masks)} masks for {len(arrays)} images')
            holes = [hole_mask(m) for m in masks]
            bad = [hm.shape for hm in holes if hm.shape != shape[:2]]
            if bad:
                raise ValueError(f'the mask is {bad[0][1]}x{bad[0][0]} (WxH), the image '
                                 f'{shape[1]}x{shape[0]}')
            mask_t = torch.from_numpy(np.stack(holes).astype(np.float32))[:, None]
        out = self.restore_tensor(lq, mask=mask_t, seed=seed, progress=progress)
        return [o for o in out.permute(0, 2, 3, 1).numpy()]

    def restore(self, image: np.ndarray, mask: Optional[np.ndarray] = None,
                seed: Seed = None,
                progress: Optional[ProgressFn] = None) -> np.ndarray:
        """Restore one (H, W, 3) RGB array; see :meth:`restore_batch`."""
        masks = None if mask is None else [mask]
        return self.restore_batch([image], masks=masks, seed=seed, progress=progress)[0]

    __call__ = restore
