"""Stage-1 DiffIR editor: CPEN_S1 + DIRformer trained jointly with an L1 pixel loss."""
from __future__ import annotations

import random
from typing import Dict, List, Optional

import torch
from mmagic.models import BaseEditModel
from mmagic.registry import MODELS
from mmagic.structures import DataSample

from .common import ProgressiveCrop, current_iter, frozen_copy, gt_in_input_space


@MODELS.register_module()
class DiffIRS1(BaseEditModel):
    """Stage 1 of DiffIR.

    The ground truth feeds the prior extractor, in training and -- as in the official code -- in
    validation and testing too, so stage-1 metrics are an upper bound, not a blind result.

    Args:
        generator: Config of a ``DiffIRS1Net``.
        pixel_loss: Config of the pixel loss (official: ``L1Loss``, weight 1).
        is_use_ema: Keep ``generator_ema`` (updated by ``GeneratorEMAHook``) and use
            it for validation, testing and inference.
        train_cfg: Optional ``progressive=dict(iters, mini_batch_sizes, gt_sizes)`` for the
            Restormer-style progressive patch schedule (deblurring).
        test_cfg, init_cfg, data_preprocessor: As in ``BaseEditModel``.
    """

    def __init__(self, generator: dict, pixel_loss: dict, is_use_ema: bool = True,
                 train_cfg: Optional[dict] = None, test_cfg: Optional[dict] = None,
                 init_cfg: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None) -> None:
        super().__init__(generator, pixel_loss, train_cfg=train_cfg, test_cfg=test_cfg,
                         init_cfg=init_cfg, data_preprocessor=data_preprocessor)
        self.is_use_ema = is_use_ema
        self.generator_ema = frozen_copy(self.generator) if is_use_ema else None
        progressive = (train_cfg or {}).get('progressive')
        self.progressive = ProgressiveCrop(**progressive) if progressive else None
        self._crop_rng = random.Random(0)

    @property
    def inference_net(self) -> torch.nn.Module:
        """The network used outside training (the EMA copy when there is one)."""
        return self.generator_ema if self.generator_ema is not None else self.generator

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
            inputs, gt = self.progressive(inputs, gt, current_iter(), self._crop_rng)
        out = self.generator(inputs, gt)
        return dict(loss_pix=self.pixel_loss(out, gt))

    def forward_inference(self, inputs: torch.Tensor, data_samples: Optional[DataSample] = None,
                          **kwargs) -> DataSample:
        feats = self.forward_tensor(inputs, data_samples, training=False)
        feats = self.data_preprocessor.destruct(feats, data_samples)
        return DataSample(pred_img=feats.cpu())

    def val_step(self, data: dict) -> List[DataSample]:  # noqa: D102
        with torch.no_grad():
            return super().val_step(data)

    def test_step(self, data: dict) -> List[DataSample]:  # noqa: D102
        with torch.no_grad():
            return super().test_step(data)
