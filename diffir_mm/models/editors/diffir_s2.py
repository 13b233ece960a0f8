"""Stage-2 DiffIR editor: CPEN_S2 + IPR diffusion + DIRformer, taught by the frozen stage 1."""
from __future__ import annotations

import copy
from typing import Dict, Optional, Union

import torch
import torch.nn.functional as F
from mmengine.dist import get_dist_info
from mmengine.optim import OptimWrapperDict
from mmagic.registry import MODELS
from mmagic.structures import DataSample

from diffir_mm.archs import CheckpointMismatchError
from diffir_mm.archs.checkpoint import Layout

from .base import DiffIREditorBase
from .common import (current_iter, forward_train, load_into, load_network_checkpoint,
                     strip_wrapper_prefixes)

_DIFFUSION_KEYS = ('n_denoise_res', 'timesteps', 'linear_start', 'linear_end')


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


@MODELS.register_module()
class DiffIRS2(DiffIREditorBase):
    """Stage 2 of DiffIR.

    The frozen stage-1 network (``teacher``) extracts the target IPR ``z_S1`` from (LQ, GT); the
    stage-2 generator estimates it from LQ alone with CPEN_S2 + a 4-step reverse diffusion started
    from ``q_sample(z_S1, T-1)``. Training has two phases:

    * iterations ``< encoder_iters``: only CPEN_S2 + denoiser are updated (optimizer
      ``encoder``), loss ``L1(z_S2, z_S1)``;
    * afterwards: everything (optimizer ``generator``), loss ``L1(I, GT) + L1(z_S2, z_S1)``.

    The KL term of the official ``KDLoss`` is logged as ``kd_kl`` but not optimised.

    Args:
        generator: Config of a ``DiffIRS2Net``.
        pixel_loss: Pixel loss config (official: ``L1Loss``).
        prior_loss: IPR loss config (official: ``L1Loss``, the paper's ``L_diff``).
        teacher: Config of the stage-1 network; derived from ``generator`` when omitted.
        stage1_checkpoint: Stage-1 checkpoint (ours or the official release). Loaded in
            :meth:`init_weights` (i.e. when training starts) into the teacher, and its DIRformer
            initialises the stage-2 DIRformer. Required for training.
        is_use_ema: Keep ``generator_ema`` for evaluation (``GeneratorEMAHook``).
        kd_tau: Temperature of the logged KL term.
        train_cfg: ``encoder_iters`` (default 0: joint from the start) and optional
            ``progressive`` (see :class:`DiffIRS1`).
    """

    def __init__(self, generator: dict, pixel_loss: dict, prior_loss: Optional[dict] = None,
                 teacher: Optional[dict] = None, stage1_checkpoint: Optional[str] = None,
                 is_use_ema: bool = True, kd_tau: float = 0.15, train_cfg: Optional[dict] = None,
                 test_cfg: Optional[dict] = None, init_cfg: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None) -> None:
        super().__init__(generator, pixel_loss, is_use_ema=is_use_ema, train_cfg=train_cfg,
                         test_cfg=test_cfg, init_cfg=init_cfg,
                         data_preprocessor=data_preprocessor)
        self.prior_loss = MODELS.build(prior_loss or dict(type='L1Loss', loss_weight=1.0))
        # The frozen stage-1 teacher: a plain submodule (moved with the model, never optimised,
        # left unwrapped by MMSeparateDistributedDataParallel as it has no trainable
        # parameters). It is reloaded from `stage1_checkpoint` whenever training starts, so it
        # is left out of saved state dicts, and loading one without it keeps the current weights.
        self.teacher = MODELS.build(teacher or teacher_config(generator)).requires_grad_(False)
        self.teacher.eval()
        self.stage1_checkpoint = stage1_checkpoint
        self.kd_tau = kd_tau
        train_cfg = train_cfg or {}
        self.encoder_iters = int(train_cfg.get('encoder_iters', 0))
        self.noise_seed = int(train_cfg.get('noise_seed', 2023))
        self.register_state_dict_post_hook(strip_wrapper_prefixes)
        self.register_state_dict_post_hook(_drop_teacher)
        self.register_load_state_dict_pre_hook(_keep_teacher)

    # ------------------------------------------------------------------ weights

    def _layout(self) -> Layout:
        net = self.generator.module if hasattr(self.generator, 'module') else self.generator
        return Layout(stage=1, task=net.task, scale=net.scale)

    def init_weights(self) -> None:
        """Load the stage-1 checkpoint into the teacher and the stage-2 DIRformer."""
        super().init_weights()
        if not self.stage1_checkpoint:
            raise CheckpointMismatchError(
                'DiffIR stage 2 needs the stage-1 checkpoint: set model.stage1_checkpoint '
                '(e.g. --cfg-options model.stage1_checkpoint=work_dirs/<s1>/iter_N.pth)')
        self.load_stage1(self.stage1_checkpoint)

    def load_stage1(self, path: str) -> None:
        """Teacher <- stage-1 network; generator(.ema).dirformer <- its DIRformer."""
        state = load_network_checkpoint(path, stage=1, expect=self._layout())
        load_into(self.teacher, state, f'stage-1 checkpoint {path}')
        for net in (self.generator, self.generator_ema):
            if net is not None:
                net = net.module if hasattr(net, 'module') else net
                load_into(net.dirformer, state, f'DIRformer of {path}', prefix='dirformer.')
        self.teacher.eval()

    def train(self, mode: bool = True) -> 'DiffIRS2':
        super().train(mode)
        self.teacher.eval()  # the teacher is frozen and always in eval mode
        return self

    # ------------------------------------------------------------------ inference
    def forward_tensor(self, inputs: torch.Tensor, data_samples: Optional[DataSample] = None,
                       training: bool = False, **kwargs) -> torch.Tensor:
        """Restore ``inputs`` (no ground truth needed)."""
        net = self.generator if training else self.inference_net
        return net(inputs, **kwargs)

    # ------------------------------------------------------------------ training
    def training_noise(self, batch: int, it: int, like: torch.Tensor) -> torch.Tensor:
        """The ``eps`` of ``q_sample`` for this rank's samples.

        Drawn for the global batch from a generator seeded by the iteration and sliced by rank,
        so N processes with batch B draw exactly what one process with batch N*B draws.
        """
        rank, world = get_dist_info()
        g = torch.Generator().manual_seed(self.noise_seed * 1_000_003 + it)
        noise = torch.randn(batch * world, like.shape[1], generator=g)
        return noise[rank * batch:(rank + 1) * batch].to(like)

    def teacher_prior(self, lq: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
        """``z_S1`` from the frozen teacher."""
        with torch.no_grad():
            return self.teacher.extract_prior(lq, gt)

    def _training_batch(self, data: dict):
        data = self.data_preprocessor(data, True)
        lq, samples = data['inputs'], data['data_samples']
        gt = samples.gt_img
        it = current_iter()
        if self.progressive is not None:
            lq, gt = self.progressive(lq, gt, it, self.crop_rng)
        return lq, gt, samples, it

    def train_step(self, data: dict,
                   optim_wrapper: Union[OptimWrapperDict, dict]) -> Dict[str, torch.Tensor]:
        """One iteration of the warm-up phase or the joint phase (see the class docstring)."""
        lq, gt, _, it = self._training_batch(data)
        z_teacher = self.teacher_prior(lq, gt)
        warmup = it < self.encoder_iters
        wrapper = optim_wrapper['encoder' if warmup else 'generator']
        noise = self.training_noise(lq.shape[0], it, z_teacher)
        with wrapper.optim_context(self.generator):
            out, steps = forward_train(self.generator, lq, z_teacher, noise=noise,
                                       restore=not warmup)
            losses = {'loss_prior': self.prior_loss(steps[-1], z_teacher)}
            if not warmup:
                losses['loss_pix'] = self.pixel_loss(out, gt)
            parsed, log_vars = self.parse_losses(losses)
        wrapper.update_params(parsed)
        log_vars['kd_kl'] = kd_divergence(steps[-1].detach(), z_teacher, self.kd_tau)
        log_vars['phase_warmup'] = torch.tensor(float(warmup))
        return log_vars
