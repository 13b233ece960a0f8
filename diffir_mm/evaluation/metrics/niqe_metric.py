"""NIQE that does not need a ground truth (for LR-only test sets)."""
from __future__ import annotations

from typing import Optional, Sequence

from mmagic.evaluation.metrics.metrics_utils import obtain_data
from mmagic.evaluation.metrics.niqe import NIQE
from mmagic.registry import METRICS

__all__ = ['NoRefNIQE']


@METRICS.register_module()
class NoRefNIQE(NIQE):
    """mmagic's ``NIQE`` without the ground-truth lookup (lower is better).

    mmagic 1.2.0's ``NIQE`` inherits ``BaseSampleWiseMetric.process``, which fetches ``gt_img`` from
    every data sample and raises ``KeyError('Mapping key was not found')`` on datasets without GT
    (e.g. RealSR inputs only). This subclass reads only the image named by ``key`` (``pred_img``
    from the model output by default, or a data-sample field when ``is_predicted=False``). The
    metric key stays ``NIQE``.

    Args:
        key: Image to score.
        is_predicted: Read ``key`` from ``data_sample['output']`` (True) or from the data sample
            itself.
        crop_border: Pixels removed from every edge.
        input_order: ``'CHW'`` (what mmagic passes) or ``'HWC'``.
        convert_to: ``'y'`` (Y of YCbCr, as the usual SR protocol) or ``'gray'``.
        collect_device: Device for collecting results across ranks.
        prefix: Prefix of the metric key.

    Metrics:
        - NIQE (float): Natural Image Quality Evaluator.
    """

    def __init__(self,
                 key: str = 'pred_img',
                 is_predicted: bool = True,
                 crop_border: int = 0,
                 input_order: str = 'CHW',
                 convert_to: str = 'y',
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(
            key=key,
            is_predicted=is_predicted,
            collect_device=collect_device,
            prefix=prefix,
            crop_border=crop_border,
            input_order=input_order,
            convert_to=convert_to)

    def process(self, data_batch: Sequence[dict],
                data_samples: Sequence[dict]) -> None:
        """Score the images of one batch.

        Args:
            data_batch: The batch from the dataloader.
            data_samples: The model outputs.
        """
        for data in data_samples:
            source = data['output'] if self.is_predicted else data
            img = obtain_data(source, self.key, self.device)
            if len(img.shape) <= 3:
                result = self.process_image(None, img, None)
            else:  # a stack of frames
                result = sum(
                    self.process_image(None, frame, None)
                    for frame in img) / img.shape[0]
            self.results.append({self.metric: result})
