"""Behaviour shared by the DiffIR editors: EMA generator, progressive patches, no-grad eval."""
from __future__ import annotations

import random
from typing import List, Optional

import torch
from mmagic.models import BaseEditModel
from mmagic.structures import DataSample

from .common import ProgressiveCrop, frozen_copy


class DiffIREditorBase(BaseEditModel):
    """``BaseEditModel`` plus an optional ``generator_ema`` used outside training.

    Args:
        generator, pixel_loss, test_cfg, init_cfg, data_preprocessor: As ``BaseEditModel``.
        is_use_ema: Keep ``generator_ema`` (updated by ``GeneratorEMAHook``) and use it for
            validation, testing and inference.
        train_cfg: Optional ``progressive=dict(iters, mini_batch_sizes, gt_sizes)`` for the
            Restormer-style progressive patch schedule (deblurring).
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
        self._crop_rng = random.Random(0)  # same crops on every rank, as the official code

    @property
    def inference_net(self) -> torch.nn.Module:
        """The network used outside training (the EMA copy when there is one)."""
        return self.generator_ema if self.generator_ema is not None else self.generator

    def forward_inference(self, inputs: torch.Tensor, data_samples: Optional[DataSample] = None,
                          **kwargs) -> DataSample:
        """Restore with :attr:`inference_net` and undo the preprocessing."""
        feats = self.forward_tensor(inputs, data_samples, training=False, **kwargs)
        feats = self.data_preprocessor.destruct(feats, data_samples)
        return DataSample(pred_img=feats.cpu())

    def val_step(self, data: dict) -> List[DataSample]:  # noqa: D102
        with torch.no_grad():
            return super().val_step(data)

    def test_step(self, data: dict) -> List[DataSample]:  # noqa: D102
        with torch.no_grad():
            return super().test_step(data)
