"""A metric that only counts images: run a test set without any real metric.

mmagic 1.2.0 cannot run a test loop without metrics: with ``dict(type='Evaluator', metrics=None)``
``MultiTestLoop`` fails when it sets ``evaluator.dataset_meta``
(``TypeError: 'NoneType' object is not iterable``), and ``Evaluator.prepare_samplers`` returns an
empty sampler for ``metrics=None``, so the model would never run. ``ImageCount`` needs nothing but
the prediction, so LR-only test sets (no GT) can be run and their results saved by the visualization
hook. When the dataset left images out (``LamaEvalDataset``: images without a LaMa evaluation
sample, listed in its ``metainfo['dropped_images']``), their number is reported too.
"""
from __future__ import annotations

from typing import List, Optional, Sequence

from mmagic.evaluation.metrics.base_sample_wise_metric import \
    BaseSampleWiseMetric
from mmagic.registry import METRICS

__all__ = ['ImageCount']


@METRICS.register_module()
class ImageCount(BaseSampleWiseMetric):
    """Number of processed images (no ground truth needed).

    Args:
        collect_device: Device for collecting results across ranks.
        prefix: Prefix of the metric key.

    Metrics:
        - ImageCount (float): how many images were restored.
        - DroppedImages (float): how many images the dataset left out (only
          when its metainfo lists ``dropped_images``).
    """

    metric = 'ImageCount'

    def __init__(self,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)

    def process(self, data_batch: Sequence[dict],
                data_samples: Sequence[dict]) -> None:
        """Count the samples of one batch.

        Args:
            data_batch: The batch from the dataloader.
            data_samples: The model outputs.
        """
        for _ in data_samples:
            self.results.append({self.metric: 1})

    def compute_metrics(self, results: List) -> dict:
        """Total number of images.

        Args:
            results: One ``{'ImageCount': 1}`` per image.

        Returns:
            ``{'ImageCount': n}`` and, if the dataset left images out, ``'DroppedImages'`` (floats:
            mmengine's JSON log drops NumPy integers).
        """
        counts = {self.metric: float(sum(r[self.metric] for r in results))}
        dropped = (self.dataset_meta or {}).get('dropped_images')
        if dropped is not None:
            counts['DroppedImages'] = float(len(dropped))
        return counts
