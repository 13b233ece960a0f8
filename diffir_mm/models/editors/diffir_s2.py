"""Stage-2 DiffIR editor: CPEN_S2 + IPR diffusion + DIRformer, taught by the frozen stage 1."""
from __future__ import annotations

from typing import Dict, Optional, Union

import torch
from mmengine.optim import OptimWrapperDict
from mmagic.registry import MODELS
from mmagic.structures import DataSample

from diffir_mm.checkpoint import CheckpointMismatchError

from .base import DiffIREditorBase
from .common import (current_iter, forward_train, inference_precision, stage2_inference,
                     strip_wrapper_prefixes)
from .teacher import FrozenTeacherMixin, kd_divergence, teacher_config

__all__ = ['DiffIRS2', 'teacher_config', 'kd_divergence']


@MODELS.register_module()
class DiffIRS2(FrozenTeacherMixin, DiffIREditorBase):
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
        self.kd_tau = kd_tau
        train_cfg = train_cfg or {}
        self.encoder_iters = int(train_cfg.get('encoder_iters', 0))
        self.register_state_dict_post_hook(strip_wrapper_prefixes)
        # the frozen stage-1 teacher (see diffir_mm.models.editors.teacher)
        self.setup_teacher(generator, teacher, stage1_checkpoint,
                           noise_seed=int(train_cfg.get('noise_seed', 2023)))

    def init_weights(self) -> None:
        """mmengine's ``init_cfg`` initialisation, then :meth:`load_pretrained`."""
        super().init_weights()
        self.load_pretrained()

    def load_pretrained(self) -> None:
        """Load the stage-1 checkpoint into the teacher and the stage-2 DIRformer.

        Subclasses that start from other weights (the GAN stage) override this, not
        :meth:`init_weights`.
        """
        if not self.stage1_checkpoint:
            raise CheckpointMismatchError(
                'DiffIR stage 2 needs the stage-1 checkpoint: set model.stage1_checkpoint '
                '(e.g. --cfg-options model.stage1_checkpoint=work_dirs/<s1>/iter_N.pth)')
        self.load_stage1(self.stage1_checkpoint)

    # ------------------------------------------------------------------ inference
    def forward_tensor(self, inputs: torch.Tensor, data_samples: Optional[DataSample] = None,
                       training: bool = False, **kwargs) -> torch.Tensor:
        """Restore ``inputs`` (no ground truth needed); outside training in
        ``test_cfg.precision`` (default fp32, see :func:`.common.stage2_inference`)."""
        if training:
            return self.generator(inputs, **kwargs)
        return stage2_inference(self.inference_net, inputs, inference_precision(self.test_cfg),
                                **kwargs)

    # ------------------------------------------------------------------ training
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
