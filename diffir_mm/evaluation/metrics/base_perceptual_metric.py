"""Shared pieces of the full-reference deep-feature metrics (LPIPS, DISTS).

Both metrics follow the contract of mmagic's ``BaseSampleWiseMetric`` (see
``mmagic/evaluation/metrics/mae.py``): ``process_image(gt, pred, mask)`` gets one ground-truth and
one predicted image, as stored in the data samples after ``DataPreprocessor.destruct``, i.e.
``(C, H, W)`` tensors in **BGR** order with values in ``[0, 255]``. This module turns such a pair
into RGB float batches in ``[0, 1]`` on the metric's device, optionally after cropping the GT to a
multiple of the SR scale and cropping a border from both images.

Weights are only ever read from local files (no network access), with
:func:`diffir_mm.checkpoint.load_state_dict_file`.
"""
from __future__ import annotations

import re
from typing import Dict, Mapping, Optional, Tuple, Union

import numpy as np
import torch
from mmagic.evaluation.metrics.base_sample_wise_metric import \
    BaseSampleWiseMetric
from torch import nn

__all__ = [
    'BasePerceptualMetric', 'map_features_state_dict', 'resolve_device'
]

ArrayLike = Union[torch.Tensor, np.ndarray]


def resolve_device(device: Union[str, torch.device, None]) -> torch.device:
    """Turn ``'auto'`` (CUDA when available, else CPU) into a device.

    Args:
        device: ``'auto'``/None, ``'cpu'``, ``'cuda'``, ``'cuda:1'``, ...

    Returns:
        The device to run the feature network on.
    """
    if device is None or device == 'auto':
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    return torch.device(device)


def map_features_state_dict(state: Mapping[str, torch.Tensor],
                            stages: Mapping[str, nn.Module],
                            what: str) -> Dict[str, torch.Tensor]:
    """Map torchvision ``features.{i}.{param}`` keys onto staged copies.

    LPIPS and DISTS split torchvision's ``vgg16().features`` / ``alexnet().features`` into
    ``nn.Sequential`` stages whose children keep the torchvision index as name (``slice2`` holds
    ``'5'``, ``'7'``, ...). This returns a state dict for the module owning ``stages``, e.g.
    ``features.5.weight`` -> ``slice2.5.weight``. Keys that are already in the staged layout
    (``slice2.5.weight``, optionally prefixed by ``net.``) are accepted as is; classifier keys are
    ignored.

    Args:
        state: A torchvision-layout (or staged) state dict.
        stages: Stage name -> ``nn.Sequential``.
        what: Description used in error messages.

    Returns:
        The state dict in the staged layout.
    """
    owner = {}
    for stage_name, stage in stages.items():
        for child_name, _ in stage.named_children():
            owner[child_name] = stage_name
    stage_names = tuple(stages)
    mapped = {}
    for key, value in state.items():
        key = re.sub(r'^(module\.|net\.)+', '', key)
        match = re.match(r'^features\.(\d+)\.(.+)$', key)
        if match:
            idx, param = match.groups()
            if idx not in owner:
                continue  # layers past the last stage (e.g. the last pool)
            mapped[f'{owner[idx]}.{idx}.{param}'] = value
        elif key.split('.', 1)[0] in stage_names:
            mapped[key] = value
    if not mapped:
        raise KeyError(f'{what}: no backbone key found (expected torchvision '
                       "keys like 'features.0.weight')")
    return mapped


class BasePerceptualMetric(BaseSampleWiseMetric):
    """Base of the deep-feature metrics (not registered).

    Args:
        gt_key: Key of the ground truth in the data sample.
        pred_key: Key of the prediction in ``data_sample['output']``.
        crop_border: Pixels removed from every edge of both images before the metric is computed.
        gt_crop_multiple: Crop the GT (bottom/right) to a multiple of this value before comparing,
            as the official SRGAN LPIPS script does for x4 (``gt[:h // 4 * 4, :w // 4 * 4]``). None:
            no crop.
        input_order: ``'CHW'`` (what mmagic passes) or ``'HWC'``.
        device: Device for the feature network: ``'auto'`` (CUDA when available), ``'cpu'``,
            ``'cuda'``...
        collect_device: Device for collecting results across ranks.
        prefix: Prefix of the metric key (``'<prefix>/KEY'``).
    """

    metric: Optional[str] = None

    def __init__(self,
                 gt_key: str = 'gt_img',
                 pred_key: str = 'pred_img',
                 crop_border: int = 0,
                 gt_crop_multiple: Optional[int] = None,
                 input_order: str = 'CHW',
                 device: str = 'auto',
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(
            gt_key=gt_key,
            pred_key=pred_key,
            mask_key=None,
            device='cpu',
            collect_device=collect_device,
            prefix=prefix)
        if input_order not in ('CHW', 'HWC'):
            raise ValueError(
                f"input_order must be 'CHW' or 'HWC', got {input_order!r}")
        if crop_border < 0:
            raise ValueError(f'crop_border must be >= 0, got {crop_border}')
        if gt_crop_multiple is not None and gt_crop_multiple < 1:
            raise ValueError('gt_crop_multiple must be None or >= 1, got '
                             f'{gt_crop_multiple}')
        self.crop_border = int(crop_border)
        self.gt_crop_multiple = gt_crop_multiple
        self.input_order = input_order
        self.net_device = resolve_device(device)
        self._net_on_device = False

    # ------------------------------------------------------------------
    # to be provided by subclasses
    # ------------------------------------------------------------------
    @property
    def net(self) -> nn.Module:
        """The feature network (set by subclasses as ``self._net``)."""
        return self._net

    def compute(self, gt: torch.Tensor, pred: torch.Tensor) -> torch.Tensor:
        """Metric of one pair of ``(1, 3, H, W)`` RGB [0, 1] tensors.

        Args:
            gt: The reference.
            pred: The distorted / restored image.

        Returns:
            A scalar.
        """
        raise NotImplementedError

    # ------------------------------------------------------------------
    def _to_rgb01(self, img: ArrayLike) -> torch.Tensor:
        """``(C,H,W)``/``(H,W,C)`` BGR-or-RGB 0-255 -> ``(1,3,H,W)`` RGB."""
        if isinstance(img, np.ndarray):
            img = torch.from_numpy(np.ascontiguousarray(img))
        img = img.detach().to(torch.float32)
        if img.ndim == 2:
            img = img[None] if self.input_order == 'CHW' else img[..., None]
        if img.ndim != 3:
            raise ValueError(f'{self.metric}: expected a single image with 3 '
                             f'dims, got shape {tuple(img.shape)}')
        if self.input_order == 'HWC':
            img = img.permute(2, 0, 1)
        if img.shape[0] == 1:
            img = img.expand(3, -1, -1)
        elif img.shape[0] != 3:
            raise ValueError(f'{self.metric}: expected 1 or 3 channels, got '
                             f'{img.shape[0]}')
        if str(self.channel_order).upper() == 'BGR':
            img = img.flip(0)
        return (img / 255.).unsqueeze(0)

    def prepare_pair(self, gt: ArrayLike,
                     pred: ArrayLike) -> Tuple[torch.Tensor, torch.Tensor]:
        """Convert, crop and move one GT/prediction pair to the device.

        Args:
            gt: GT image, BGR 0-255.
            pred: Predicted image, BGR 0-255.

        Returns:
            ``(gt, pred)``, ``(1, 3, H, W)`` RGB in ``[0, 1]``.
        """
        gt, pred = self._to_rgb01(gt), self._to_rgb01(pred)
        if self.gt_crop_multiple:
            m = int(self.gt_crop_multiple)
            h, w = gt.shape[-2:]
            gt = gt[..., :h // m * m, :w // m * m]
        if gt.shape != pred.shape:
            raise ValueError(
                f'{self.metric}: GT shape {tuple(gt.shape[1:])} and '
                f'prediction shape {tuple(pred.shape[1:])} differ (set '
                'gt_crop_multiple or crop the GT in the test pipeline, e.g. '
                'ModCrop)')
        if self.crop_border:
            c = self.crop_border
            if gt.shape[-1] <= 2 * c or gt.shape[-2] <= 2 * c:
                raise ValueError(f'{self.metric}: crop_border={c} leaves no '
                                 f'pixel of a {tuple(gt.shape[-2:])} image')
            gt = gt[..., c:-c, c:-c]
            pred = pred[..., c:-c, c:-c]
        if not self._net_on_device:
            self.net.to(self.net_device)
            self._net_on_device = True
        return gt.to(self.net_device), pred.to(self.net_device)

    def process_image(self, gt: ArrayLike, pred: ArrayLike,
                      mask=None) -> float:
        """Metric value of one image pair (called by ``process``).

        Args:
            gt: GT image, BGR 0-255.
            pred: Predicted image, BGR 0-255.
            mask: Unused (whole image).

        Returns:
            The metric value.
        """
        gt, pred = self.prepare_pair(gt, pred)
        with torch.no_grad():
            value = self.compute(gt, pred)
        return float(value.reshape(-1)[0].item())
