"""Helpers shared by the DiffIR editors: GT in network space, stage-1 loading, progressive crops."""
from __future__ import annotations

import random
from copy import deepcopy
from typing import Any, Callable, Dict, Optional, Sequence, Tuple

import torch
from torch import nn

from diffir_mm.checkpoint import (CheckpointMismatchError, Layout, discriminator_state,
                                  load_state_strict, read_network, require)
from diffir_mm.inference.precision import resolve_precision
from diffir_mm.inference.tiling import restore_tiled
from diffir_mm.utils.wrappers import unwrap_model

__all__ = ['GeneratorEMAMixin', 'gt_in_input_space', 'load_network_checkpoint', 'ProgressiveCrop',
           'frozen_copy', 'current_iter', 'load_into', 'load_discriminator', 'call_wrapped',
           'forward_train', 'strip_wrapper_prefixes', 'inference_precision', 'stage2_inference']


def strip_wrapper_prefixes(module: nn.Module, state_dict: Dict[str, torch.Tensor], prefix: str,
                           local_metadata: Any) -> None:
    """State-dict hook: save ``generator.module.x`` (a DDP-wrapped child) as ``generator.x``.

    mmengine saves ``model.state_dict()`` but its loader unwraps wrapped children, so without
    this, checkpoints written under ``MMSeparateDistributedDataParallel`` would not load back
    (resume) nor into an unwrapped model (test, inference).
    """
    for name, child in module.named_children():
        if not isinstance(getattr(child, 'module', None), nn.Module):
            continue
        old, new = f'{prefix}{name}.module.', f'{prefix}{name}.'
        for key in [k for k in state_dict if k.startswith(old)]:
            state_dict[new + key[len(old):]] = state_dict.pop(key)


def frozen_copy(module: nn.Module) -> nn.Module:
    """A deep copy with gradients disabled (EMA copies and teachers)."""
    copy = deepcopy(module)
    copy.requires_grad_(False)
    return copy


class GeneratorEMAMixin:
    """An optional frozen ``generator_ema`` that replaces ``generator`` outside training.

    ``GeneratorEMAHook`` updates the copy; the editor calls :meth:`setup_generator_ema` once its
    ``generator`` is built and restores with :attr:`inference_net`.
    """

    def setup_generator_ema(self, is_use_ema: bool) -> None:
        """Keep a frozen copy of ``generator`` as ``generator_ema`` when ``is_use_ema``."""
        self.is_use_ema = is_use_ema
        self.generator_ema = frozen_copy(self.generator) if is_use_ema else None

    @property
    def inference_net(self) -> nn.Module:
        """The network used outside training (the EMA copy when there is one)."""
        return self.generator_ema if self.generator_ema is not None else self.generator


def gt_in_input_space(data_samples: Any, preprocessor: nn.Module, training: bool) -> torch.Tensor:
    """The ground truth in the space the network works in (RGB, normalised like the input).

    In training MMagic's ``DataPreprocessor`` already normalises ``gt_img``; in evaluation it
    leaves it as BGR 0-255 for the metrics, so it is converted back here.
    """
    gt = data_samples.gt_img
    if training:
        return gt
    order = getattr(preprocessor, 'output_channel_order', None) or 'RGB'
    if order.upper() == 'RGB' and gt.shape[1] == 3:
        gt = gt.flip(1)
    mean = getattr(preprocessor, 'mean', None)
    std = getattr(preprocessor, 'std', None)
    if mean is not None and std is not None:
        gt = (gt - mean.view(1, -1, 1, 1)) / std.view(1, -1, 1, 1)
    return gt


def current_iter(default: int = 0) -> int:
    """The runner's iteration from mmengine's message hub (``default`` outside a runner)."""
    from mmengine.logging import MessageHub
    hub = MessageHub.get_current_instance()
    return int(hub.get_info('iter', default))


def load_network_checkpoint(path: str, stage: int, expect: Layout,
                            component: str = 'generator') -> Dict[str, torch.Tensor]:
    """Read a DiffIR checkpoint (ours or official), check it, return its state in our naming.

    Args:
        path: Checkpoint file.
        stage: Expected stage (1 or 2).
        expect: Expected task / scale (``dim`` is checked by the caller's strict load).
        component: ``'generator'`` or ``'teacher'``.

    Raises:
        FileNotFoundError / CheckpointMismatchError with a one-line explanation.
    """
    ckpt = require(read_network(path, component), stage=stage, task=expect.task,
                   scale=expect.scale)
    return ckpt.state


def call_wrapped(wrapper: nn.Module, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)`` run as the forward of ``wrapper``'s network (or plainly).

    DDP synchronises the gradients of what runs through its own call, which calls the wrapped
    network's ``forward``; for this one call that ``forward`` is therefore ``fn`` (which must
    use the unwrapped network). Without a wrapper ``fn`` is simply called.
    """
    net = unwrap_model(wrapper)
    if net is wrapper:
        return fn(*args, **kwargs)
    net.forward = fn
    try:
        return wrapper(*args, **kwargs)
    finally:
        del net.forward


def forward_train(generator: nn.Module, *args: Any, **kwargs: Any) -> Any:
    """``DiffIRS2Net.forward_train`` through ``generator``, the network or its DDP wrapper."""
    return call_wrapped(generator, unwrap_model(generator).forward_train, *args, **kwargs)


def inference_precision(test_cfg: Optional[dict]) -> str:
    """``test_cfg.precision`` of a stage-2 editor: ``'fp32'`` unless set (validation and
    ``tools/test.py`` measure full-precision metrics; the inferencer sets ``'auto'``)."""
    return (test_cfg or {}).get('precision', 'fp32')


def stage2_inference(net: nn.Module, inputs: torch.Tensor, precision: str = 'fp32',
                     **kwargs: Any) -> torch.Tensor:
    """``net(inputs, **kwargs)`` of a stage-2 network (no gradients) in ``precision``.

    fp32 is the plain forward; bf16 / fp16 follow the Restorer's policy
    (:mod:`diffir_mm.inference.precision`: prior in fp32, DIRformer under autocast, non-finite
    output recomputed in fp32 with a warning), through the untiled :func:`restore_tiled`.
    """
    if resolve_precision(precision, inputs.device) == 'fp32':
        return net(inputs, **kwargs)
    return restore_tiled(net, inputs, precision=precision, **kwargs)


def load_into(module: nn.Module, state: Dict[str, torch.Tensor], what: str,
              prefix: str = '') -> None:
    """Strictly load ``state`` (optionally only keys under ``prefix``) with a clear error."""
    if prefix:
        state = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    load_state_strict(module, state, what)


def load_discriminator(discriminator: nn.Module, path: str) -> None:
    """Strictly load a trained discriminator (``model.discriminator_checkpoint``).

    Reads the ``discriminator.*`` weights of one of our checkpoints or of a LaMa / Lightning
    ``last.ckpt`` (same prefix and names), or an official BasicSR ``net_d_*.pth``
    (:func:`diffir_mm.checkpoint.discriminator_state`).

    Raises:
        FileNotFoundError / CheckpointMismatchError with a one-line explanation.
    """
    what = f'discriminator checkpoint {path} (model.discriminator_checkpoint)'
    try:
        state = discriminator_state(path)
    except CheckpointMismatchError as err:
        raise CheckpointMismatchError(f'{what}: {err}') from None
    load_into(discriminator, state, what)


class ProgressiveCrop:
    """Restormer-style progressive patches: per phase, a sub-batch and a smaller random crop.

    Args:
        iters: Phase lengths (e.g. ``[92000, 80000, 38000, 33000, 33000, 24000]``).
        mini_batch_sizes: Images per GPU in each phase (sub-sampled from the loader batch).
        gt_sizes: Patch size of each phase (cropped from the loader patch, same place for all
            images of the batch).
        scale: LQ -> GT scale (1 for deblurring).
    """

    def __init__(self, iters: Sequence[int], mini_batch_sizes: Sequence[int],
                 gt_sizes: Sequence[int], scale: int = 1) -> None:
        if not len(iters) == len(mini_batch_sizes) == len(gt_sizes):
            raise ValueError('progressive iters, mini_batch_sizes and gt_sizes must have the '
                             'same length')
        self.bounds = [sum(iters[:i + 1]) for i in range(len(iters))]
        self.mini_batch_sizes = list(mini_batch_sizes)
        self.gt_sizes = list(gt_sizes)
        self.scale = scale

    def phase(self, it: int) -> int:
        """Index of the phase of 0-based iteration ``it``."""
        for i, bound in enumerate(self.bounds):
            if it < bound:
                return i
        return len(self.bounds) - 1

    def __call__(self, lq: torch.Tensor, gt: torch.Tensor, it: int,
                 rng: Optional[random.Random] = None) -> Tuple[torch.Tensor, torch.Tensor]:
        rng = rng or random
        j = self.phase(it)
        batch, size = self.mini_batch_sizes[j], self.gt_sizes[j]
        if batch < lq.shape[0]:
            idx = sorted(rng.sample(range(lq.shape[0]), k=batch))
            lq, gt = lq[idx], gt[idx]
        full = gt.shape[-1]
        if size < full:
            top = int((gt.shape[-2] - size) * rng.random()) // self.scale * self.scale
            left = int((full - size) * rng.random()) // self.scale * self.scale
            gt = gt[..., top:top + size, left:left + size]
            s = self.scale
            lq = lq[..., top // s:(top + size) // s, left // s:(left + size) // s]
        return lq, gt
