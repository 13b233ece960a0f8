"""DiffIR inpainting editors: stage 1 (CPEN_S1 sees the ground truth) and stage 2 (IPR diffusion).

Both train with LaMa's losses and discriminator (:class:`DiffIRInpaintorBase`). Stage 2 follows
DiffIR's ``defaultS2.py``: the frozen stage-1 network (``generatorS1``) extracts
``z_S1 = CPEN_S1(cat(masked, mask), img)``; the stage-2 network runs its reverse diffusion from
``q_sample(z_S1, T-1)`` and restores under the last step; ``L_diff = L1(z_S2, z_S1)`` (official
``KDLoss`` ``l_abs``, weight 1; its KL is only logged, ``kd_kl``) is added to the LaMa losses,
**jointly from step 0** (no encoder-only phase). The stage-2 DIRformer starts from the stage-1
one; CPEN_S2 and the denoiser start random (the official S2 loads the S1 file with
``strict=False``).
"""
from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import torch
from mmagic.registry import MODELS
from mmagic.structures import DataSample

from .common import (forward_train, gt_in_input_space, inference_precision, load_discriminator,
                     stage2_inference)
from .diffir_inpaint_base import DiffIRInpaintorBase
from .teacher import FrozenTeacherMixin, kd_divergence

__all__ = ['DiffIRInpaintS1', 'DiffIRInpaintS2']


@MODELS.register_module()
class DiffIRInpaintS1(DiffIRInpaintorBase):
    """Stage 1 of DiffIR inpainting (official ``defaultS1``).

    As in the official code the ground truth feeds the prior extractor also in validation and
    testing, so stage-1 metrics are an upper bound, not a blind result.

    Args:
        generator: Config of a ``DiffIRS1Net`` (preset ``inpaint``).
        discriminator, masked_l1_loss, adversarial_loss, feature_matching_loss, resnet_pl_loss,
        train_cfg, test_cfg, init_cfg, data_preprocessor, is_use_ema: See
            :class:`DiffIRInpaintorBase`.
    """

    def predict_raw(self, net_input: torch.Tensor, data_samples: Optional[DataSample],
                    **kwargs) -> torch.Tensor:
        """Raw output of ``DiffIRS1Net(net_input, gt)`` (:attr:`inference_net`)."""
        if data_samples is None or 'gt_img' not in data_samples:
            raise ValueError('DiffIR stage 1 needs the ground truth (gt_img) to extract the '
                             'prior; use a stage-2 model for inputs without ground truth')
        gt = gt_in_input_space(data_samples, self.data_preprocessor, training=False)
        return self.inference_net(net_input, gt.to(net_input))

    def generate(self, net_input: torch.Tensor, gt: torch.Tensor, it: int,
                 stream: int = 0) -> Tuple[torch.Tensor, Dict[str, torch.Tensor],
                                           Dict[str, torch.Tensor]]:
        """``DiffIRS1Net(net_input, gt)``; no extra losses."""
        return self.generator(net_input, gt), {}, {}


@MODELS.register_module()
class DiffIRInpaintS2(FrozenTeacherMixin, DiffIRInpaintorBase):
    """Stage 2 of DiffIR inpainting (official ``defaultS2``), taught by the frozen stage 1.

    Args:
        generator: Config of a ``DiffIRS2Net`` (preset ``inpaint`` + diffusion settings).
        discriminator, masked_l1_loss, adversarial_loss, feature_matching_loss, resnet_pl_loss,
        test_cfg, init_cfg, data_preprocessor: See :class:`DiffIRInpaintorBase`.
        prior_loss: ``L_diff`` config (official: L1, weight 1).
        teacher: Config of the stage-1 network; derived from ``generator`` when omitted.
        stage1_checkpoint: Stage-1 checkpoint (ours, an official LaMa ``last.ckpt`` of stage 1
            or the ``S1forS2.py`` state dict): loaded in :meth:`init_weights` into the teacher
            and the stage-2 DIRformer. Required for training unless ``stage2_checkpoint``
            stores the teacher.
        stage2_checkpoint: A trained stage-2 model to fine-tune (ours or a released LaMa
            ``last.ckpt``, which stores its teacher): see
            :meth:`FrozenTeacherMixin.load_stage2`.
        discriminator_checkpoint: A trained discriminator to start from: the ``discriminator.*``
            weights of a LaMa ``last.ckpt`` or of one of our checkpoints.
        kd_tau: Temperature of the logged KL term.
        train_cfg: ``disc_regenerate`` (see the base) and ``noise_seed`` (2023) of the
            per-iteration ``q_sample`` noise.
        is_use_ema: See :class:`DiffIRInpaintorBase`.
    """

    def __init__(self, generator: dict, discriminator: dict, masked_l1_loss: dict,
                 adversarial_loss: dict, feature_matching_loss: Optional[dict] = None,
                 resnet_pl_loss: Optional[dict] = None, prior_loss: Optional[dict] = None,
                 teacher: Optional[dict] = None, stage1_checkpoint: Optional[str] = None,
                 kd_tau: float = 0.15, train_cfg: Optional[dict] = None,
                 test_cfg: Optional[dict] = None, init_cfg: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None,
                 stage2_checkpoint: Optional[str] = None,
                 discriminator_checkpoint: Optional[str] = None,
                 is_use_ema: bool = False) -> None:
        super().__init__(generator, discriminator, masked_l1_loss, adversarial_loss,
                         feature_matching_loss=feature_matching_loss,
                         resnet_pl_loss=resnet_pl_loss, train_cfg=train_cfg, test_cfg=test_cfg,
                         init_cfg=init_cfg, data_preprocessor=data_preprocessor,
                         is_use_ema=is_use_ema)
        self.prior_loss = MODELS.build(prior_loss or dict(type='L1Loss', loss_weight=1.0))
        self.kd_tau = kd_tau
        self.setup_teacher(generator, teacher, stage1_checkpoint,
                           noise_seed=int((train_cfg or {}).get('noise_seed', 2023)),
                           stage2_checkpoint=stage2_checkpoint)
        self.discriminator_checkpoint = discriminator_checkpoint

    def init_weights(self) -> None:
        """Teacher and stage-2 DIRformer <- stage 1, or everything <- ``stage2_checkpoint``;
        discriminator <- ``discriminator_checkpoint`` when set."""
        super().init_weights()  # also reads the ResNet-PL weights (one-line error if absent)
        self.load_teacher_and_student()
        if self.discriminator_checkpoint:
            load_discriminator(self.discriminator, self.discriminator_checkpoint)

    def predict_raw(self, net_input: torch.Tensor, data_samples: Optional[DataSample],
                    **kwargs) -> torch.Tensor:
        """Raw output of ``DiffIRS2Net(net_input)`` from ``x_T`` (``noise`` / ``generator``), in
        ``test_cfg.precision`` (default fp32, see :func:`.common.stage2_inference`)."""
        return stage2_inference(self.inference_net, net_input, inference_precision(self.test_cfg),
                                **kwargs)

    def generator_forward(self, net_input: torch.Tensor, gt: torch.Tensor,
                          noise: Optional[torch.Tensor] = None, it: int = 0,
                          stream: int = 0) -> Tuple[torch.Tensor, List[torch.Tensor],
                                                    torch.Tensor]:
        """The official training forward: ``(image, reverse steps, z_S1)``.

        Args:
            net_input: ``cat(masked image, mask)``.
            gt: Ground truth (network space), the teacher's second input.
            noise: The ``eps`` of ``q_sample(z_S1, T-1, eps)``; drawn by
                :meth:`training_noise` for ``(it, stream)`` when omitted.
            it, stream: Iteration and noise stream of the draw.
        """
        z_teacher = self.teacher_prior(net_input, gt)
        if noise is None:
            noise = self.training_noise(net_input.shape[0], it, z_teacher, stream=stream)
        image, steps = forward_train(self.generator, net_input, z_teacher, noise=noise)
        return image, steps, z_teacher

    def generate(self, net_input: torch.Tensor, gt: torch.Tensor, it: int,
                 stream: int = 0) -> Tuple[torch.Tensor, Dict[str, torch.Tensor],
                                           Dict[str, torch.Tensor]]:
        """Training chain from the noised teacher IPR; ``loss_diff`` and the logged ``kd_kl``."""
        image, steps, z_teacher = self.generator_forward(net_input, gt, it=it, stream=stream)
        losses = {'loss_diff': self.prior_loss(steps[-1], z_teacher)}
        logged = {'kd_kl': kd_divergence(steps[-1].detach(), z_teacher, self.kd_tau)}
        return image, losses, logged
