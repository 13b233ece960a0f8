"""LaMa's inpainting losses, as DiffIR-inpainting trains with them.

The recipe: ``docs/advanced_guides/method.md`` §4.5.

Official weights (``configs/training/DiffIRS{1,2}-*.yaml``): masked L1 ``weight_known 10``,
``weight_missing 0``; adversarial ``r1`` (non-saturating + R1 penalty) ``weight 10``,
``gp_coef 0.001``, ``mask_as_fake_target``; discriminator feature matching 100. Facts from LaMa's
``saicinpainting/training/losses/{feature_matching,adversarial}.py``:

* masked L1 is the plain mean of ``w * |pred - gt|`` with ``w = weight_missing`` in holes and
  ``weight_known`` elsewhere (not normalised by the mask, unlike MMagic's weighted ``L1Loss``);
* the discriminator treats the hole pixels of a fake image as fake and its known pixels as real
  (``mask_as_fake_target``; the mask is resized to the logits with ``nearest``), and adds
  ``gp_coef * E[||d D(real) / d real||^2]`` (R1, computed with MMagic's
  ``r1_gradient_penalty_loss``, ``norm_mode='HWC'``); the generator term is the non-saturating
  ``softplus(-D(fake))`` mean times ``weight`` (MMagic's ``GANLoss('vanilla')``);
* feature matching is the mean over discriminator layers of the MSE between the features of
  the fake and the real image (no mask: ``pass_mask`` is off in every DiffIR config).
"""
from __future__ import annotations

from typing import Dict, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmagic.models.losses import GANLoss
from mmagic.models.losses.gan_loss import r1_gradient_penalty_loss
from mmagic.registry import MODELS
from torch import nn

__all__ = ['MaskedL1Loss', 'NonSaturatingR1Loss', 'DiscFeatureMatchingLoss']


@MODELS.register_module()
class MaskedL1Loss(nn.Module):
    """LaMa's masked L1: ``mean((mask * w_missing + (1 - mask) * w_known) * |pred - gt|)``.

    Args:
        weight_known: Weight of the known (mask 0) pixels.
        weight_missing: Weight of the hole (mask 1) pixels.
    """

    def __init__(self, weight_known: float = 10.0, weight_missing: float = 0.0) -> None:
        super().__init__()
        self.weight_known = weight_known
        self.weight_missing = weight_missing

    def forward(self, pred: torch.Tensor, target: torch.Tensor,
                mask: torch.Tensor) -> torch.Tensor:
        """Loss of ``(B, C, H, W)`` images with a ``(B, 1, H, W)`` mask (1 = hole)."""
        weights = mask * self.weight_missing + (1 - mask) * self.weight_known
        return (weights * (pred - target).abs()).mean()


@MODELS.register_module()
class NonSaturatingR1Loss(nn.Module):
    """Non-saturating GAN loss with an R1 penalty and the mask as fake target (LaMa ``r1``).

    Args:
        loss_weight: Weight of the generator term (the discriminator loss is unweighted).
        gp_coef: Weight of the R1 penalty in the discriminator loss.
        mask_as_fake_target: Known pixels of a fake image count as real for the discriminator.
    """

    def __init__(self, loss_weight: float = 10.0, gp_coef: float = 0.001,
                 mask_as_fake_target: bool = True) -> None:
        super().__init__()
        self.gan_loss = GANLoss('vanilla', loss_weight=loss_weight)
        self.gp_coef = gp_coef
        self.mask_as_fake_target = mask_as_fake_target

    def generator_loss(self, fake_logits: torch.Tensor) -> torch.Tensor:
        """``loss_weight * mean(softplus(-D(fake)))``."""
        return self.gan_loss(fake_logits, target_is_real=True, is_disc=False)

    def discriminator_loss(self, discriminator: nn.Module, real: torch.Tensor,
                           real_logits: torch.Tensor, fake_logits: torch.Tensor,
                           mask: torch.Tensor) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
        """Discriminator loss and its logged parts.

        Args:
            discriminator: Called on ``real`` for the R1 penalty (returns logits).
            real: Real images ``(B, 3, H, W)``.
            real_logits: ``discriminator(real)``.
            fake_logits: ``discriminator(fake.detach())``.
            mask: ``(B, 1, H, W)``, 1 = hole.

        Returns:
            ``(loss, {'real': ..., 'fake': ..., 'r1': ...})``.
        """
        real_term = self.gan_loss(real_logits, target_is_real=True, is_disc=True)
        if self.mask_as_fake_target:
            target = 1 - F.interpolate(mask, size=fake_logits.shape[-2:], mode='nearest')
            fake_term = F.binary_cross_entropy_with_logits(fake_logits, target)
        else:
            fake_term = self.gan_loss(fake_logits, target_is_real=False, is_disc=True)
        r1 = r1_gradient_penalty_loss(discriminator, real, norm_mode='HWC') * self.gp_coef
        parts = dict(real=real_term, fake=fake_term, r1=r1)
        return real_term + fake_term + r1, parts


@MODELS.register_module()
class DiscFeatureMatchingLoss(nn.Module):
    """Mean over layers of ``MSE(fake_features, real_features)``, times ``loss_weight``.

    Args:
        loss_weight: Weight of the loss (official 100).
    """

    def __init__(self, loss_weight: float = 100.0) -> None:
        super().__init__()
        self.loss_weight = loss_weight

    def forward(self, fake_features: Sequence[torch.Tensor],
                real_features: Sequence[torch.Tensor]) -> torch.Tensor:
        """Loss of two equally long lists of discriminator features."""
        if len(fake_features) != len(real_features) or not fake_features:
            raise ValueError(f'feature matching needs two equally long, non-empty feature lists '
                             f'(got {len(fake_features)} and {len(real_features)})')
        losses = [F.mse_loss(f, r.detach()) for f, r in zip(fake_features, real_features)]
        return torch.stack(losses).mean() * self.loss_weight
