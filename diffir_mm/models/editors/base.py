"""Behaviour shared by the DiffIR editors: EMA generator, progressive patches, no-grad eval.

The progressive-crop RNG is per rank, as in the official code (``manual_seed + rank``): it is
seeded from this process's torch seed (mmengine's ``randomness.seed``, plus the rank with
``diff_rank_seed=True``) and the rank, so ranks crop differently even with
``diff_rank_seed=False``, and the same run crops the same way again. Its state travels in
checkpoints (``random_states`` / ``load_random_states``, used by ``RandomStateCheckpointHook``)
so that ``--resume`` continues the same crops.
"""
from __future__ import annotations

import random
from typing import Any, Dict, List, Optional

import torch
from mmengine.dist import get_dist_info
from mmagic.models import BaseEditModel
from mmagic.structures import DataSample

from .common import GeneratorEMAMixin, ProgressiveCrop


def progressive_crop_seed() -> str:
    """Seed of this rank's progressive-crop RNG: the process's torch seed and the rank."""
    rank, _ = get_dist_info()
    return f'progressive-crop:{torch.initial_seed()}:{rank}'


class DiffIREditorBase(GeneratorEMAMixin, BaseEditModel):
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
        self.setup_generator_ema(is_use_ema)
        progressive = (train_cfg or {}).get('progressive')
        self.progressive = ProgressiveCrop(**progressive) if progressive else None
        self.crop_rng = random.Random(progressive_crop_seed())

    def random_states(self) -> Dict[str, Any]:
        """The model's own random streams, for checkpoints (``RandomStateCheckpointHook``)."""
        return {'progressive_crop': self.crop_rng.getstate()}

    def load_random_states(self, states: Dict[str, Any]) -> None:
        """Restore what :meth:`random_states` returned."""
        if 'progressive_crop' in states:
            version, internal, gauss = states['progressive_crop']
            self.crop_rng.setstate((version, tuple(internal), gauss))

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
