"""Stage-1 DiffIR editor: CPEN_S1 + DIRformer trained jointly with an L1 pixel loss."""
from __future__ import annotations

from typing import Dict, Optional

import torch
from mmagic.registry import MODELS
from mmagic.structures import DataSample

from .base import DiffIREditorBase
from .common import current_iter, gt_in_input_space


@MODELS.register_module()
class DiffIRS1(DiffIREditorBase):
    """Stage 1 of DiffIR.

    The ground truth feeds the prior extractor, in training and -- as in the official code -- in
    validation and testing too, so stage-1 metrics are an upper bound, not a blind result.

    Args:
        generator: Config of a ``DiffIRS1Net``.
        pixel_loss: Config of the pixel loss (official: ``L1Loss``, weight 1).
        is_use_ema, train_cfg, test_cfg, init_cfg, data_preprocessor: See
            :class:`DiffIREditorBase`.
    """

    def forward_tensor(self, inputs: torch.Tensor, data_samples: Optional[DataSample] = None,
                       training: bool = False, **kwargs) -> torch.Tensor:
        """Restore ``inputs`` using the ground truth of ``data_samples`` for the prior."""
        if data_samples is None or 'gt_img' not in data_samples:
            raise ValueError('DiffIR stage 1 needs the ground truth (gt_img) to extract the '
                             'prior; use a stage-2 model for inputs without ground truth')
        gt = gt_in_input_space(data_samples, self.data_preprocessor, training)
        net = self.generator if training else self.inference_net
        return net(inputs, gt)

    def forward_train(self, inputs: torch.Tensor, data_samples: Optional[DataSample] = None,
                      **kwargs) -> Dict[str, torch.Tensor]:
        """Pixel loss of the restored image against the ground truth."""
        gt = data_samples.gt_img
        if self.progressive is not None:
            inputs, gt = self.progressive(inputs, gt, current_iter(), self.crop_rng)
        out = self.generator(inputs, gt)
        return dict(loss_pix=self.pixel_loss(out, gt))
