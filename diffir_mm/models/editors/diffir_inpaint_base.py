"""Base of the DiffIR inpainting editors: MMagic's one-stage inpaintor with LaMa's training step.

DiffIR-inpainting trains with LaMa's ``DefaultInpaintingTrainingModule`` (DiffIR's
``saicinpainting/training/trainers/{baseS1,defaultS1,baseS2,defaultS2}.py``); facts of that
trainer kept here:

* network input ``cat(img * (1 - mask), mask)`` (``concat_mask``), mask 1 = hole; the output is
  blended as ``mask * pred + (1 - mask) * img`` (``inpainted``), which is what is evaluated;
* every generator loss and the discriminator see the **raw** prediction
  (``image_to_discriminator = 'predicted_image'``, the default, no DiffIR config changes it):
  masked L1 (known 10 / missing 0), non-saturating adversarial loss (weight 10), feature matching
  of the discriminator's features of fake vs real (100, no mask), ResNet-PL (30); VGG perceptual
  weight is 0, so that loss is not built here;
* one Lightning ``training_step`` per optimizer: first the generator (discriminator frozen),
  then the discriminator on a **new** forward of the just-updated generator (detached):
  ``train_cfg.disc_regenerate`` True, the default; False reuses the generator-step output and
  saves that forward;
* discriminator loss: ``softplus(-D(real)) + R1 * gp_coef + fake term`` with the hole pixels of
  the fake as fake and its known pixels as real (``mask_as_fake_target``);
* Adam (generator 2e-4, discriminator 1e-4), gradient clipping 1 (the configs' ``optim_wrapper``).

MMagic's conventions (``OneStageInpaintor``): ``inputs`` is the masked image, the mask is
``data_samples.mask`` (1 = hole), the ground truth ``gt_img``; ``forward_test`` returns
``fake_res`` (raw), ``fake_img`` (blended) and ``pred_img = fake_img`` for the metrics. The hole
pixels of ``inputs`` are ignored (the editor zeroes them), so MMagic's ``GetMaskedImage`` fill
value (127.5 by default) or the raw image both work. A mask that is not 0/1 is binarised as
``mask > 0``, the rule of the official ``bin/predict.py``.
"""
from __future__ import annotations

from typing import Dict, Optional, Tuple, Union

import torch
from mmengine.optim import OptimWrapperDict
from mmagic.models.base_models import OneStageInpaintor
from mmagic.models.utils import set_requires_grad
from mmagic.registry import MODELS
from mmagic.structures import DataSample

from diffir_mm.inference.inpainting import hole_batch
from diffir_mm.utils.wrappers import unwrap_model

from .common import GeneratorEMAMixin, call_wrapped, current_iter, strip_wrapper_prefixes

__all__ = ['DiffIRInpaintorBase', 'inpainting_mask']


def inpainting_mask(inputs: torch.Tensor, data_samples: Optional[DataSample]) -> torch.Tensor:
    """The batch's hole mask as a float 0/1 tensor ``(B, 1, H, W)`` (``mask > 0``).

    Raises:
        ValueError: (one line) no mask in the data samples, or one whose shape does not fit
            ``inputs``.
    """
    mask = None
    if data_samples is not None and 'mask' in data_samples:
        mask = data_samples.mask
    if mask is None:
        raise ValueError('DiffIR inpainting needs a mask (data_samples.mask, 1 = hole): add '
                         'GenerateInpaintingMask or LoadInpaintingMask to the pipeline before '
                         "PackInputs (which stores results['mask'] as data_samples.mask)")
    return hole_batch(mask, inputs)


class DiffIRInpaintorBase(GeneratorEMAMixin, OneStageInpaintor):
    """Generator + discriminator + LaMa losses; stage specifics in :meth:`generate`.

    Args:
        generator: Config of the DiffIR network (``DiffIRS1Net`` / ``DiffIRS2Net``, preset
            ``inpaint``: ``task='inpaint'``, 4 input channels).
        discriminator: Config of the discriminator (official: ``NLayerPatchDiscriminator``, ndf
            64, 4 layers).
        masked_l1_loss: ``MaskedL1Loss`` config (official known 10, missing 0).
        adversarial_loss: ``NonSaturatingR1Loss`` config (official weight 10, gp 0.001,
            ``mask_as_fake_target``).
        feature_matching_loss: ``DiscFeatureMatchingLoss`` config (official 100), or None.
        resnet_pl_loss: ``ResNetPLLoss`` config (official 30, weights from a local path), or
            None.
        train_cfg: ``disc_regenerate`` (bool, default True, see the module docstring).
        test_cfg, init_cfg: As ``OneStageInpaintor``.
        is_use_ema: Keep ``generator_ema`` (updated by ``GeneratorEMAHook``) and use it for
            validation, testing and inference. Off by default: the official LaMa trainer has
            no EMA; the short CPU demo uses one (``configs/demo``).
        data_preprocessor: MMagic ``DataPreprocessor`` (DiffIR: mean 0, std 255, RGB).
    """

    def __init__(self, generator: dict, discriminator: dict, masked_l1_loss: dict,
                 adversarial_loss: dict, feature_matching_loss: Optional[dict] = None,
                 resnet_pl_loss: Optional[dict] = None, train_cfg: Optional[dict] = None,
                 test_cfg: Optional[dict] = None, init_cfg: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None, is_use_ema: bool = False) -> None:
        train_cfg = dict(train_cfg or {})
        super().__init__(data_preprocessor=data_preprocessor, encdec=generator,
                         train_cfg=train_cfg, test_cfg=test_cfg, init_cfg=init_cfg)
        self.discriminator = MODELS.build(discriminator)
        self.masked_l1_loss = MODELS.build(masked_l1_loss)
        self.adversarial_loss = MODELS.build(adversarial_loss)
        self.feature_matching_loss = (MODELS.build(feature_matching_loss)
                                      if feature_matching_loss else None)
        self.resnet_pl_loss = MODELS.build(resnet_pl_loss) if resnet_pl_loss else None
        self.disc_regenerate = bool(train_cfg.get('disc_regenerate', True))
        self.setup_generator_ema(is_use_ema)
        self.register_state_dict_post_hook(strip_wrapper_prefixes)

    # ------------------------------------------------------------------ inputs and outputs
    @staticmethod
    def network_input(inputs: torch.Tensor,
                      data_samples: Optional[DataSample]) -> Tuple[torch.Tensor, torch.Tensor]:
        """``(cat(inputs * (1 - mask), mask), mask)`` of a preprocessed batch."""
        mask = inpainting_mask(inputs, data_samples)
        return torch.cat([inputs * (1 - mask), mask], dim=1), mask

    def predict_raw(self, net_input: torch.Tensor, data_samples: Optional[DataSample],
                    **kwargs) -> torch.Tensor:
        """The raw output of :attr:`inference_net` outside training (stage specific)."""
        raise NotImplementedError

    def forward_tensor(self, inputs: torch.Tensor, data_samples: Optional[DataSample] = None,
                       **kwargs) -> Tuple[torch.Tensor, torch.Tensor]:
        """``(fake_res, fake_img)``: raw output and ``mask * fake_res + (1 - mask) * inputs``.

        Args:
            inputs: Preprocessed masked (or raw) images ``(B, 3, H, W)``.
            data_samples: With ``mask`` (and ``gt_img`` for stage 1).
            **kwargs: Passed to the network (stage 2: ``noise`` / ``generator`` for ``x_T``).
        """
        net_input, mask = self.network_input(inputs, data_samples)
        fake_res = self.predict_raw(net_input, data_samples, **kwargs)
        return fake_res, mask * fake_res + (1 - mask) * inputs

    def val_step(self, data: dict):  # noqa: D102
        with torch.no_grad():
            return super().val_step(data)

    def test_step(self, data: dict):  # noqa: D102
        with torch.no_grad():
            return super().test_step(data)

    # ------------------------------------------------------------------ training
    def generate(self, net_input: torch.Tensor, gt: torch.Tensor, it: int,
                 stream: int = 0) -> Tuple[torch.Tensor, Dict[str, torch.Tensor],
                                           Dict[str, torch.Tensor]]:
        """Training forward of the generator (stage specific).

        Args:
            net_input: ``cat(masked image, mask)``.
            gt: Ground truth (network space).
            it: Iteration (stage 2 seeds its noise with it).
            stream: 0 for the generator step, 1 for the discriminator step's new forward.

        Returns:
            ``(raw prediction, extra generator losses, extra logged values)``.
        """
        raise NotImplementedError

    def generator_losses(self, fake_res: torch.Tensor, gt: torch.Tensor,
                         mask: torch.Tensor) -> Dict[str, torch.Tensor]:
        """LaMa's generator losses of the raw prediction (discriminator frozen)."""
        disc = unwrap_model(self.discriminator)  # frozen: no gradients to synchronise
        losses = {'loss_l1_masked': self.masked_l1_loss(fake_res, gt, mask)}
        with torch.no_grad():
            _, real_features = disc.forward_features(gt)  # LaMa runs D(real) first (BN stats)
        fake_logits, fake_features = disc.forward_features(fake_res)
        losses['loss_adv'] = self.adversarial_loss.generator_loss(fake_logits)
        if self.feature_matching_loss is not None:
            losses['loss_fm'] = self.feature_matching_loss(fake_features, real_features)
        if self.resnet_pl_loss is not None:
            losses['loss_resnet_pl'] = self.resnet_pl_loss(fake_res, gt)
        return losses

    def _discriminator_objective(self, real: torch.Tensor, fake: torch.Tensor,
                                 mask: torch.Tensor) -> Dict[str, torch.Tensor]:
        disc = unwrap_model(self.discriminator)
        _, parts = self.adversarial_loss.discriminator_loss(disc, real, disc(real), disc(fake),
                                                            mask)
        return {'loss_d_real': parts['real'], 'loss_d_fake': parts['fake'],
                'loss_r1': parts['r1']}

    def train_step(self, data: dict,
                   optim_wrapper: Union[OptimWrapperDict, dict]) -> Dict[str, torch.Tensor]:
        """Generator step, then discriminator step (LaMa's order)."""
        data = self.data_preprocessor(data, True)
        inputs, samples = data['inputs'], data['data_samples']
        if 'gt_img' not in samples:
            raise ValueError('DiffIR inpainting training needs the ground truth (gt_img)')
        net_input, mask = self.network_input(inputs, samples)
        gt = samples.gt_img
        it = current_iter()

        g_wrapper = optim_wrapper['generator']
        set_requires_grad(self.discriminator, False)
        with g_wrapper.optim_context(self.generator):
            fake_res, losses, logged = self.generate(net_input, gt, it)
            losses.update(self.generator_losses(fake_res, gt, mask))
            parsed, log_vars = self.parse_losses(losses)
        g_wrapper.update_params(parsed)
        log_vars.pop('loss', None)
        log_vars.update(logged)

        if self.disc_regenerate:
            with torch.no_grad():
                fake_res = self.generate(net_input, gt, it, stream=1)[0]
        d_wrapper = optim_wrapper['discriminator']
        set_requires_grad(self.discriminator, True)
        with d_wrapper.optim_context(self.discriminator):
            d_losses = call_wrapped(self.discriminator, self._discriminator_objective, gt,
                                    fake_res.detach(), mask)
            parsed, d_log = self.parse_losses(d_losses)
        d_wrapper.update_params(parsed)
        d_log.pop('loss', None)
        log_vars.update(d_log)
        return {k: v.detach() for k, v in log_vars.items()}
