"""The frozen stage-1 teacher of every DiffIR stage-2 editor (SR, deblurring, inpainting).

Stage 2 learns to estimate the IPR ``z_S1`` that the frozen stage-1 network extracts from
(degraded input, ground truth). :class:`FrozenTeacherMixin` holds that network and what comes
with it, once for all stage-2 editors:

* the teacher is a plain submodule with gradients off, always in eval mode, built from the
  stage-2 generator config (same architecture without the diffusion settings); it moves with the
  model, is never optimised and stays unwrapped under ``MMSeparateDistributedDataParallel`` (no
  trainable parameters);
* it is reloaded from ``stage1_checkpoint`` (ours or an official file, read through
  ``diffir_mm.checkpoint``) whenever training starts, so it is left out of saved state
  dicts, and a state dict without it keeps the current weights (resume, test);
* the same checkpoint initialises the stage-2 DIRformer (official: the S2 network is loaded from
  the S1 file with ``strict=False``, so only ``G.*`` transfers; CPEN_S2 and the denoiser start
  random);
* the ``q_sample`` noise of each iteration is drawn per global sample from a generator seeded by
  the iteration, so N processes reach the weights of one process with the same global batch.
"""
from __future__ import annotations

import copy
from typing import Optional

import torch
import torch.nn.functional as F
from mmengine.dist import get_dist_info
from mmagic.registry import MODELS

from diffir_mm.checkpoint import Layout
from diffir_mm.utils.wrappers import unwrap_model

from .common import load_into, load_network_checkpoint

__all__ = ['FrozenTeacherMixin', 'teacher_config', 'kd_divergence']

_DIFFUSION_KEYS = ('n_denoise_res', 'timesteps', 'linear_start', 'linear_end')
#: Offset between the seeds of two noise streams of the same iteration.
_STREAM_STRIDE = 2 ** 40


def teacher_config(generator: dict) -> dict:
    """Stage-1 network config with the architecture of a stage-2 generator config."""
    cfg = {k: v for k, v in copy.deepcopy(dict(generator)).items() if k not in _DIFFUSION_KEYS}
    cfg['type'] = 'DiffIRS1Net'
    return cfg


def kd_divergence(student: torch.Tensor, teacher: torch.Tensor, tau: float) -> torch.Tensor:
    """The official (logged-only) KL term: ``KL(softmax(t/tau) || softmax(s/tau))``, batchmean."""
    return F.kl_div(F.log_softmax(student / tau, dim=1), F.softmax(teacher / tau, dim=1),
                    reduction='batchmean')


def _drop_teacher(module: torch.nn.Module, state_dict: dict, prefix: str,
                  local_metadata: dict) -> None:
    """State-dict hook: leave the frozen teacher (``teacher.*``) out of saved weights."""
    for key in [k for k in state_dict if k.startswith(f'{prefix}teacher.')]:
        del state_dict[key]


def _keep_teacher(module: torch.nn.Module, state_dict: dict, prefix: str, *args) -> None:
    """Load pre-hook: a state dict without ``teacher.*`` keeps the current teacher weights."""
    for key, value in module.teacher.state_dict().items():
        state_dict.setdefault(f'{prefix}teacher.{key}', value)


class FrozenTeacherMixin:
    """Teacher construction, loading and the training noise of a stage-2 editor.

    The editor (an ``nn.Module`` with a ``generator`` and, optionally, a ``generator_ema``)
    calls :meth:`setup_teacher` in its constructor.
    """

    def setup_teacher(self, generator: dict, teacher: Optional[dict],
                      stage1_checkpoint: Optional[str], noise_seed: int = 2023) -> None:
        """Build the frozen teacher and register its state-dict hooks.

        Args:
            generator: The stage-2 generator config (the teacher's default architecture).
            teacher: Explicit stage-1 network config, or None.
            stage1_checkpoint: Stage-1 checkpoint loaded by :meth:`load_stage1`.
            noise_seed: Seed of :meth:`training_noise`.
        """
        self.teacher = MODELS.build(teacher or teacher_config(generator)).requires_grad_(False)
        self.teacher.eval()
        self.stage1_checkpoint = stage1_checkpoint
        self.noise_seed = int(noise_seed)
        self.register_state_dict_post_hook(_drop_teacher)
        self.register_load_state_dict_pre_hook(_keep_teacher)

    def _layout(self) -> Layout:
        """The stage-1 layout the teacher checkpoint must have (task and scale of the generator)."""
        net = unwrap_model(self.generator)
        return Layout(stage=1, task=net.task, scale=net.scale)

    def load_stage1(self, path: str) -> None:
        """Teacher <- stage-1 network; generator(.ema).dirformer <- its DIRformer."""
        state = load_network_checkpoint(path, stage=1, expect=self._layout())
        load_into(self.teacher, state, f'stage-1 checkpoint {path}')
        for net in (self.generator, getattr(self, 'generator_ema', None)):
            if net is not None:
                load_into(unwrap_model(net).dirformer, state, f'DIRformer of {path}',
                          prefix='dirformer.')
        self.teacher.eval()

    def train(self, mode: bool = True):
        super().train(mode)
        self.teacher.eval()  # the teacher is frozen and always in eval mode
        return self

    def training_noise(self, batch: int, it: int, like: torch.Tensor,
                       stream: int = 0) -> torch.Tensor:
        """The ``eps`` of ``q_sample`` for this rank's samples.

        Drawn for the global batch from a generator seeded by the iteration (and ``stream``, for
        a second draw in the same iteration) and sliced by rank, so N processes with batch B
        draw exactly what one process with batch N*B draws.
        """
        rank, world = get_dist_info()
        seed = self.noise_seed * 1_000_003 + it + stream * _STREAM_STRIDE
        g = torch.Generator().manual_seed(seed)
        noise = torch.randn(batch * world, like.shape[1], generator=g)
        return noise[rank * batch:(rank + 1) * batch].to(like)

    def teacher_prior(self, lq: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
        """``z_S1`` from the frozen teacher."""
        with torch.no_grad():
            return self.teacher.extract_prior(lq, gt)
