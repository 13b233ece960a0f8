"""Stage-2 GAN editor of DiffIR (real-world and bicubic SR): adds perceptual and GAN losses.

One iteration is split into overridable steps as in MMagic's ``SRGAN`` / ``RealESRGAN``, so a
subclass changes one loss or one update and inherits the rest:

* :meth:`extract_gt_data`: the pixel, perceptual and GAN targets (:class:`GanTargets`), the
  only place that chooses between the ground truth and its USM-sharpened version;
* :meth:`g_step`: the generator's image losses; :meth:`prior_step`: DiffIR's IPR loss against
  the frozen teacher; :meth:`g_step_with_optim`: one generator update with both;
* :meth:`d_step_real` / :meth:`d_step_fake`: the discriminator's losses on the target and on the
  generated image; :meth:`d_step_with_optim`: one discriminator update with both;
* :meth:`if_run_g` / :meth:`if_run_d`: the schedule (``disc_steps``, ``disc_init_steps``).

Unlike MMagic's ``step_counter`` buffer, the schedule follows the runner's iteration, so a
resumed run keeps it.
"""
from __future__ import annotations

from typing import Dict, NamedTuple, Optional, Tuple, Union

import torch
from mmengine.optim import OptimWrapperDict
from mmagic.models.utils import set_requires_grad
from mmagic.registry import MODELS
from mmagic.structures import DataSample

from diffir_mm.checkpoint import CheckpointMismatchError, Layout, discriminator_state
from diffir_mm.utils.wrappers import unwrap_model

from .common import current_iter, forward_train, load_into, load_network_checkpoint
from .diffir_s2 import DiffIRS2
from .teacher import kd_divergence

__all__ = ['DiffIRS2GAN', 'GanTargets']


class GanTargets(NamedTuple):
    """The targets of one GAN iteration (in the order of MMagic ``RealESRGAN``'s tuple)."""

    pixel: torch.Tensor
    percep: torch.Tensor
    gan: torch.Tensor


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
                         init_cfg=init_cfg, data_preprocessor=data_preprocessor)
        self.discriminator = MODELS.build(discriminator)
        self.perceptual_loss = MODELS.build(perceptual_loss) if perceptual_loss else None
        self.gan_loss = MODELS.build(gan_loss) if gan_loss else None
        self.stage2_checkpoint = stage2_checkpoint
        self.discriminator_checkpoint = discriminator_checkpoint
        cfg = train_cfg or {}
        self.l1_gt_usm = bool(cfg.get('l1_gt_usm', False))
        self.percep_gt_usm = bool(cfg.get('percep_gt_usm', False))
        self.gan_gt_usm = bool(cfg.get('gan_gt_usm', False))
        self.disc_steps = int(cfg.get('disc_steps', 1))
        self.disc_init_steps = int(cfg.get('disc_init_steps', 0))

    # ------------------------------------------------------------------ starting weights
    def load_pretrained(self) -> None:
        """Generator (+EMA) <- stage-2 checkpoint; teacher <- stage-1 checkpoint; discriminator.

        Called by :meth:`DiffIRS2.init_weights` after mmengine's ``init_cfg`` initialisation.
        """
        if not self.stage2_checkpoint:
            raise CheckpointMismatchError(
                'the DiffIR GAN stage starts from a stage-2 model: set model.stage2_checkpoint '
                '(e.g. --cfg-options model.stage2_checkpoint=work_dirs/<s2>/iter_N.pth)')
        layout = self._layout()
        s2 = load_network_checkpoint(self.stage2_checkpoint, stage=2,
                                     expect=Layout(2, layout.task, layout.scale))
        for net in (self.generator, self.generator_ema):
            if net is not None:
                load_into(unwrap_model(net), s2, f'stage-2 checkpoint {self.stage2_checkpoint}')
        if self.stage1_checkpoint:
            teacher = load_network_checkpoint(self.stage1_checkpoint, stage=1, expect=layout)
            source = self.stage1_checkpoint
        else:
            try:
                teacher = load_network_checkpoint(self.stage2_checkpoint, stage=1, expect=layout,
                                                  component='teacher')
            except CheckpointMismatchError as err:
                raise CheckpointMismatchError(
                    'the GAN stage needs the stage-1 teacher: set model.stage1_checkpoint '
                    f'({err})') from None
            source = f'teacher of {self.stage2_checkpoint}'
        load_into(self.teacher, teacher, f'stage-1 weights ({source})')
        self.teacher.eval()
        if self.discriminator_checkpoint:
            self.load_discriminator(self.discriminator_checkpoint)

    def load_discriminator(self, path: str) -> None:
        """Discriminator <- ``discriminator.*`` of our checkpoint or an official ``net_d`` file.

        Raises:
            FileNotFoundError / CheckpointMismatchError with a one-line explanation.
        """
        what = f'discriminator checkpoint {path} (model.discriminator_checkpoint)'
        try:
            state = discriminator_state(path)
        except CheckpointMismatchError as err:
            raise CheckpointMismatchError(f'{what}: {err}') from None
        load_into(self.discriminator, state, what)

    # ------------------------------------------------------------------ targets
    def extract_gt_data(self, data_samples: DataSample) -> GanTargets:
        """The pixel, perceptual and GAN targets: the GT, or per flag its sharpened version.

        The sharpened GT (``gt_unsharp``, 0-255, from MMagic's ``UnsharpMasking`` or the
        degradation preprocessor) is normalised like ``gt_img``.
        """
        gt = data_samples.gt_img
        flags = (self.l1_gt_usm, self.percep_gt_usm, self.gan_gt_usm)
        if not any(flags):
            return GanTargets(gt, gt, gt)
        usm = data_samples.get('gt_unsharp', None) if hasattr(data_samples, 'get') else None
        if usm is None:
            raise ValueError('V2 (USM) training needs gt_unsharp: add UnsharpMasking(keys=["gt"]) '
                             'to the train pipeline and PackInputs(data_keys=["gt_unsharp"])')
        pre = self.data_preprocessor
        usm = (usm.to(gt) - pre.mean.view(1, -1, 1, 1)) / pre.std.view(1, -1, 1, 1)
        return GanTargets(*(usm if sharpened else gt for sharpened in flags))

    def _gan_batch(self, data: dict) -> Tuple[torch.Tensor, GanTargets, int]:
        """Preprocessed input, its targets and the iteration (one progressive crop for all)."""
        data = self.data_preprocessor(data, True)
        lq, targets = data['inputs'], self.extract_gt_data(data['data_samples'])
        it = current_iter()
        if self.progressive is not None:
            lq, stacked = self.progressive(lq, torch.cat(targets, dim=1), it, self.crop_rng)
            targets = GanTargets(*stacked.chunk(len(targets), dim=1))
        return lq, targets, it

    # ------------------------------------------------------------------ schedule
    def if_run_g(self) -> bool:
        """Whether this iteration updates the generator (every ``disc_steps``, after init)."""
        it = current_iter()
        return it % self.disc_steps == 0 and it >= self.disc_init_steps

    def if_run_d(self) -> bool:
        """Whether this iteration updates the discriminator (whenever there is a GAN loss)."""
        return self.gan_loss is not None

    # ------------------------------------------------------------------ generator
    def g_step(self, batch_outputs: torch.Tensor,
               batch_gt_data: GanTargets) -> Dict[str, torch.Tensor]:
        """The generator's image losses: pixel, perceptual (and style) and GAN.

        Args:
            batch_outputs: The generated images.
            batch_gt_data: The targets of :meth:`extract_gt_data`.
        """
        losses = {'loss_pix': self.pixel_loss(batch_outputs, batch_gt_data.pixel)}
        if self.perceptual_loss is not None:
            percep, style = self.perceptual_loss(batch_outputs, batch_gt_data.percep)
            if percep is not None:
                losses['loss_perceptual'] = percep
            if style is not None:
                losses['loss_style'] = style
        if self.gan_loss is not None:
            losses['loss_gan'] = self.gan_loss(self.discriminator(batch_outputs),
                                               target_is_real=True, is_disc=False)
        return losses

    def prior_step(self, prior: torch.Tensor,
                   teacher_prior: torch.Tensor) -> Dict[str, torch.Tensor]:
        """DiffIR's IPR loss: the estimated ``z_S2`` against the teacher's ``z_S1``."""
        return {'loss_prior': self.prior_loss(prior, teacher_prior)}

    def g_step_with_optim(self, batch_outputs: torch.Tensor, batch_gt_data: GanTargets,
                          optim_wrapper: Union[OptimWrapperDict, dict],
                          priors: Tuple[torch.Tensor, torch.Tensor]) -> Dict[str, torch.Tensor]:
        """One generator update with :meth:`g_step` and :meth:`prior_step`; returns the log.

        Args:
            batch_outputs, batch_gt_data: As :meth:`g_step`.
            optim_wrapper: Holds the ``generator`` optimizer wrapper.
            priors: ``(z_S2, z_S1)``, the estimated and the teacher's IPR.
        """
        g_wrapper = optim_wrapper['generator']
        with g_wrapper.optim_context(self.generator):
            losses = self.g_step(batch_outputs, batch_gt_data)
            losses.update(self.prior_step(*priors))
            parsed, log_vars = self.parse_losses(losses)
        g_wrapper.update_params(parsed)
        return log_vars

    # ------------------------------------------------------------------ discriminator
    def d_step_real(self, batch_outputs: torch.Tensor,
                    batch_gt_data: GanTargets) -> torch.Tensor:
        """The discriminator's loss on the GAN target (real)."""
        return self.gan_loss(self.discriminator(batch_gt_data.gan), target_is_real=True,
                             is_disc=True)

    def d_step_fake(self, batch_outputs: torch.Tensor,
                    batch_gt_data: GanTargets) -> torch.Tensor:
        """The discriminator's loss on the generated images (fake, no generator gradient)."""
        return self.gan_loss(self.discriminator(batch_outputs.detach()), target_is_real=False,
                             is_disc=True)

    def d_step_with_optim(self, batch_outputs: torch.Tensor, batch_gt_data: GanTargets,
                          optim_wrapper: Union[OptimWrapperDict, dict]
                          ) -> Dict[str, torch.Tensor]:
        """One discriminator update: backward of :meth:`d_step_real`, then :meth:`d_step_fake`.

        As before this split, the two losses are not divided by the wrapper's
        ``accumulative_counts`` (MMagic's ``SRGAN`` divides them with ``scale_loss``).
        """
        d_wrapper = optim_wrapper['discriminator']
        log_vars = {}
        for name, step in (('loss_d_real', self.d_step_real), ('loss_d_fake', self.d_step_fake)):
            with d_wrapper.optim_context(self.discriminator):
                parsed, part_log = self.parse_losses({name: step(batch_outputs, batch_gt_data)})
            d_wrapper.backward(parsed)
            log_vars[name] = part_log[name]
        if d_wrapper.should_update():
            d_wrapper.step()
            d_wrapper.zero_grad()
        return log_vars

    # ------------------------------------------------------------------ iteration
    def train_step(self, data: dict,
                   optim_wrapper: Union[OptimWrapperDict, dict]) -> Dict[str, torch.Tensor]:
        """Generator step (when :meth:`if_run_g`), then a discriminator step (:meth:`if_run_d`)."""
        lq, batch_gt_data, it = self._gan_batch(data)
        # the official V2 feeds the teacher the L1 target (the sharpened GT under l1_gt_usm)
        z_teacher = self.teacher_prior(lq, batch_gt_data.pixel)
        noise = self.training_noise(lq.shape[0], it, z_teacher)
        with optim_wrapper['generator'].optim_context(self.generator):
            batch_outputs, steps = forward_train(self.generator, lq, z_teacher, noise=noise)
        log_vars: Dict[str, torch.Tensor] = {}
        if self.if_run_g():
            set_requires_grad(self.discriminator, False)
            log_vars.update(self.g_step_with_optim(batch_outputs, batch_gt_data, optim_wrapper,
                                                   priors=(steps[-1], z_teacher)))
            log_vars['kd_kl'] = kd_divergence(steps[-1].detach(), z_teacher, self.kd_tau)
        if self.if_run_d():
            set_requires_grad(self.discriminator, True)
            log_vars.update(self.d_step_with_optim(batch_outputs.detach(), batch_gt_data,
                                                   optim_wrapper))
        log_vars.pop('loss', None)
        return log_vars
