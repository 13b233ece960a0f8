"""Stage-2 GAN editor of DiffIR (real-world and bicubic SR): adds perceptual and GAN losses."""
from __future__ import annotations

from typing import Dict, Optional, Union

import torch
from mmengine.model import BaseModule
from mmengine.optim import OptimWrapperDict
from mmagic.models.utils import set_requires_grad
from mmagic.registry import MODELS

from diffir_mm.archs import CheckpointMismatchError

from .common import forward_train, load_discriminator
from .diffir_s2 import DiffIRS2


@MODELS.register_module()
class DiffIRS2GAN(DiffIRS2):
    """DiffIR stage 2 with a GAN (official ``DiffIRGANS2Model``).

    The whole stage-2 network (DIRformer, CPEN_S2, denoiser) is trained with
    ``L1(I, GT) + L1(z_S2, z_S1) + perceptual + GAN`` against a U-Net discriminator with spectral
    norm; the discriminator with the vanilla GAN loss on real and fake.

    V2 (``train_cfg.l1_gt_usm`` / ``percep_gt_usm`` True) uses the USM-sharpened ground truth
    (``gt_unsharp``, from MMagic's ``UnsharpMasking`` transform) as the L1 and perceptual target
    and as the teacher's input; the pipeline degrades the sharpened image as well.

    Args:
        generator, pixel_loss, prior_loss, teacher, is_use_ema, kd_tau, data_preprocessor: As in
            :class:`DiffIRS2`.
        discriminator: Discriminator config (official: ``UNetDiscriminatorWithSpectralNorm``).
        perceptual_loss: Config of :class:`VGGPerceptualLoss` (VGG19 from a local file).
        gan_loss: ``GANLoss`` config (official: vanilla, weight 1).
        stage2_checkpoint: Stage-2 checkpoint the generator starts from (ours or official).
        stage1_checkpoint: Stage-1 checkpoint of the teacher; may be omitted when
            ``stage2_checkpoint`` is ours and stores the teacher.
        discriminator_checkpoint: Optional discriminator to start from (official
            ``pretrain_network_d`` of ``finetune_DiffIRS2_GAN_x*_V2.yml``): one of our GAN
            checkpoints (its ``discriminator.*`` weights) or an official ``net_d_*.pth``
            (``params``). Loaded strictly in :meth:`init_weights`.
        train_cfg: ``l1_gt_usm``, ``percep_gt_usm``, ``gan_gt_usm`` (bools), ``disc_steps``
            (generator every N iterations, 1) and ``disc_init_steps`` (0).
    """

    def __init__(self, generator: dict, discriminator: dict, pixel_loss: dict,
                 perceptual_loss: Optional[dict] = None, gan_loss: Optional[dict] = None,
                 prior_loss: Optional[dict] = None, teacher: Optional[dict] = None,
                 stage2_checkpoint: Optional[str] = None,
                 stage1_checkpoint: Optional[str] = None,
                 discriminator_checkpoint: Optional[str] = None, is_use_ema: bool = True,
                 kd_tau: float = 0.15, train_cfg: Optional[dict] = None,
                 test_cfg: Optional[dict] = None, init_cfg: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None) -> None:
        super().__init__(generator, pixel_loss, prior_loss=prior_loss, teacher=teacher,
                         stage1_checkpoint=stage1_checkpoint, is_use_ema=is_use_ema,
                         kd_tau=kd_tau, train_cfg=train_cfg, test_cfg=test_cfg,
                         init_cfg=init_cfg, data_preprocessor=data_preprocessor,
                         stage2_checkpoint=stage2_checkpoint)
        self.discriminator = MODELS.build(discriminator)
        self.perceptual_loss = MODELS.build(perceptual_loss) if perceptual_loss else None
        self.gan_loss = MODELS.build(gan_loss) if gan_loss else None
        self.discriminator_checkpoint = discriminator_checkpoint
        cfg = train_cfg or {}
        self.l1_gt_usm = bool(cfg.get('l1_gt_usm', False))
        self.percep_gt_usm = bool(cfg.get('percep_gt_usm', False))
        self.gan_gt_usm = bool(cfg.get('gan_gt_usm', False))
        self.disc_steps = int(cfg.get('disc_steps', 1))
        self.disc_init_steps = int(cfg.get('disc_init_steps', 0))

    def init_weights(self) -> None:
        """Generator (+EMA) <- stage-2 checkpoint; teacher <- stage-1 checkpoint."""
        BaseModule.init_weights(self)
        if not self.stage2_checkpoint:
            raise CheckpointMismatchError(
                'the DiffIR GAN stage starts from a stage-2 model: set model.stage2_checkpoint '
                '(e.g. --cfg-options model.stage2_checkpoint=work_dirs/<s2>/iter_N.pth)')
        self.load_pretrained()
        if self.discriminator_checkpoint:
            self.load_discriminator(self.discriminator_checkpoint)

    def load_discriminator(self, path: str) -> None:
        """Discriminator <- ``discriminator.*`` of our checkpoint or an official ``net_d`` file.

        Raises:
            FileNotFoundError / CheckpointMismatchError with a one-line explanation.
        """
        load_discriminator(self.discriminator, path)

    def _usm_gt(self, samples, gt: torch.Tensor) -> torch.Tensor:
        usm = samples.get('gt_unsharp', None) if hasattr(samples, 'get') else None
        if usm is None:
            raise ValueError('V2 (USM) training needs gt_unsharp: add UnsharpMasking(keys=["gt"]) '
                             'to the train pipeline and PackInputs(data_keys=["gt_unsharp"])')
        pre = self.data_preprocessor
        usm = usm.to(gt)
        return (usm - pre.mean.view(1, -1, 1, 1)) / pre.std.view(1, -1, 1, 1)

    def train_step(self, data: dict,
                   optim_wrapper: Union[OptimWrapperDict, dict]) -> Dict[str, torch.Tensor]:
        """Generator step (every ``disc_steps`` iterations), then a discriminator step."""
        lq, gt, samples, it = self._training_batch(data)
        gt_usm = self._usm_gt(samples, gt) if (
            self.l1_gt_usm or self.percep_gt_usm or self.gan_gt_usm) else gt
        gt_pix = gt_usm if self.l1_gt_usm else gt
        gt_percep = gt_usm if self.percep_gt_usm else gt
        gt_gan = gt_usm if self.gan_gt_usm else gt
        # the official V2 feeds the sharpened GT to the teacher whenever l1_gt_usm is on
        z_teacher = self.teacher_prior(lq, gt_usm if self.l1_gt_usm else gt)
        noise = self.training_noise(lq.shape[0], it, z_teacher)
        log_vars: Dict[str, torch.Tensor] = {}

        g_wrapper = optim_wrapper['generator']
        run_g = it % self.disc_steps == 0 and it >= self.disc_init_steps
        with g_wrapper.optim_context(self.generator):
            out, steps = forward_train(self.generator, lq, z_teacher, noise=noise)
        if run_g:
            set_requires_grad(self.discriminator, False)
            with g_wrapper.optim_context(self.generator):
                losses = {'loss_pix': self.pixel_loss(out, gt_pix),
                          'loss_prior': self.prior_loss(steps[-1], z_teacher)}
                if self.perceptual_loss is not None:
                    percep, style = self.perceptual_loss(out, gt_percep)
                    if percep is not None:
                        losses['loss_perceptual'] = percep
                    if style is not None:
                        losses['loss_style'] = style
                if self.gan_loss is not None:
                    losses['loss_gan'] = self.gan_loss(self.discriminator(out), target_is_real=True,
                                                       is_disc=False)
                parsed, g_log = self.parse_losses(losses)
            g_wrapper.update_params(parsed)
            log_vars.update(g_log)
            log_vars['kd_kl'] = self._kd(steps[-1].detach(), z_teacher)

        if self.gan_loss is not None:
            d_wrapper = optim_wrapper['discriminator']
            set_requires_grad(self.discriminator, True)
            with d_wrapper.optim_context(self.discriminator):
                real = self.gan_loss(self.discriminator(gt_gan), target_is_real=True,
                                     is_disc=True)
                parsed_real, real_log = self.parse_losses({'loss_d_real': real})
            d_wrapper.backward(parsed_real)
            with d_wrapper.optim_context(self.discriminator):
                fake = self.gan_loss(self.discriminator(out.detach()), target_is_real=False,
                                     is_disc=True)
                parsed_fake, fake_log = self.parse_losses({'loss_d_fake': fake})
            d_wrapper.backward(parsed_fake)
            if d_wrapper.should_update():
                d_wrapper.step()
                d_wrapper.zero_grad()
            log_vars['loss_d_real'] = real_log['loss']
            log_vars['loss_d_fake'] = fake_log['loss']
        log_vars.pop('loss', None)
        return log_vars

    def _kd(self, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        from .diffir_s2 import kd_divergence
        return kd_divergence(student, teacher, self.kd_tau)
