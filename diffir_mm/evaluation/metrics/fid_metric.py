"""FID between the outputs and the ground truths of a test set (LaMa's inpainting protocol).

LaMa's ``bin/evaluate_predicts.py`` (``FIDScore``, dims 2048) feeds the inpainted images and
their originals, RGB in [0, 1], to pytorch-fid's Inception-v3 (bilinear resize to 299, scaled to
[-1, 1], 2048-d final average pool) and computes the Frechet distance between the two feature
sets. MMagic's ``FrechetInceptionDistance`` is a generative metric (it samples the model and
reads real statistics from the dataloader or a pickle) and, when its Inception file cannot be
read, tries to download one; this metric instead collects both feature sets in the ordinary test
pass. It reuses MMagic's pieces: the FID ``InceptionV3`` network (built without weights, then
loaded from the local pytorch-fid file ``pt_inception-2015-12-05-6726825d.pth``) and
``FrechetInceptionDistance._calc_fid``.
"""
from __future__ import annotations

import warnings
from typing import List, Optional

import numpy as np
import torch
from mmagic.evaluation.functional import InceptionV3
from mmagic.evaluation.metrics.fid import FrechetInceptionDistance
from mmagic.registry import METRICS

from diffir_mm.checkpoint import load_state_dict_file

from .base_perceptual_metric import BasePerceptualMetric

__all__ = ['PairedFID', 'map_inception_state_dict']

#: torchvision Inception-v3 module -> ``InceptionV3.blocks`` index (final-pool configuration).
_INCEPTION_BLOCKS = {
    'Conv2d_1a_3x3': '0.0', 'Conv2d_2a_3x3': '0.1', 'Conv2d_2b_3x3': '0.2',
    'Conv2d_3b_1x1': '1.0', 'Conv2d_4a_3x3': '1.1',
    'Mixed_5b': '2.0', 'Mixed_5c': '2.1', 'Mixed_5d': '2.2', 'Mixed_6a': '2.3', 'Mixed_6b': '2.4',
    'Mixed_6c': '2.5', 'Mixed_6d': '2.6', 'Mixed_6e': '2.7',
    'Mixed_7a': '3.0', 'Mixed_7b': '3.1', 'Mixed_7c': '3.2',
}


def map_inception_state_dict(state: dict) -> dict:
    """pytorch-fid / torchvision Inception keys (``Mixed_5b.branch1x1.conv.weight``) ->
    ``InceptionV3`` keys (``blocks.2.0.branch1x1.conv.weight``); the classifier is dropped and
    keys already in the ``blocks.*`` layout are kept.

    Args:
        state: The loaded state dict.

    Returns:
        The state dict of MMagic's ``InceptionV3([3])``.
    """
    mapped = {}
    for key, value in state.items():
        head, _, rest = key.partition('.')
        if head == 'blocks':
            mapped[key] = value
        elif head in _INCEPTION_BLOCKS:
            mapped[f'blocks.{_INCEPTION_BLOCKS[head]}.{rest}'] = value
    return mapped


@METRICS.register_module()
class PairedFID(BasePerceptualMetric):
    """FID (Inception-v3 2048-d pool features) between the predictions and the GTs.

    Args:
        inception_path: Local pytorch-fid weights ``pt_inception-2015-12-05-6726825d.pth``
            (torchvision key names, 1008 classes). Required unless ``allow_random_weights``.
        allow_random_weights: Permit ``inception_path=None`` (random Inception, tests only).
        gt_key, pred_key, crop_border, input_order, device, collect_device, prefix: See
            :class:`~diffir_mm.evaluation.metrics.base_perceptual_metric.BasePerceptualMetric`.

    Metrics:
        - FID (float): Frechet distance of the two feature sets (needs >= 2 images).
    """

    metric = 'FID'

    def __init__(self, inception_path: Optional[str] = None, allow_random_weights: bool = False,
                 gt_key: str = 'gt_img', pred_key: str = 'pred_img', crop_border: int = 0,
                 input_order: str = 'CHW', device: str = 'auto', collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(gt_key=gt_key, pred_key=pred_key, crop_border=crop_border,
                         input_order=input_order, device=device, collect_device=collect_device,
                         prefix=prefix)
        if inception_path is None and not allow_random_weights:
            raise ValueError('PairedFID needs inception_path, a local pytorch-fid '
                             'pt_inception-2015-12-05-6726825d.pth; nothing is downloaded')
        net = InceptionV3([3], resize_input=True, normalize_input=True,
                          load_fid_inception=False)
        if inception_path is not None:
            state = map_inception_state_dict(
                load_state_dict_file(inception_path, 'FID Inception weights'))
            missing, _ = net.load_state_dict(state, strict=False)
            if missing:
                raise KeyError(f'{inception_path} is not an FID Inception-v3 file: '
                               f'{len(missing)} weights missing, e.g. {missing[0]}')
        else:
            warnings.warn('PairedFID uses a RANDOM Inception (allow_random_weights=True): the '
                          'values are meaningless and only suitable for tests.')
        self._net = net.eval().requires_grad_(False)

    def features(self, img: torch.Tensor) -> np.ndarray:
        """2048-d pool features of RGB ``[0, 1]`` images ``(B, 3, H, W)``."""
        with torch.no_grad():
            return self.net(img)[0].flatten(1).double().cpu().numpy()

    def process_image(self, gt, pred, mask=None) -> np.ndarray:
        """Features of one pair, stacked as ``(2, 2048)``: prediction, GT."""
        gt, pred = self.prepare_pair(gt, pred)
        return self.features(torch.cat([pred, gt]))

    def compute_metrics(self, results: List[dict]) -> dict:
        """Frechet distance between the prediction and GT features of all images."""
        feats = np.stack([r[self.metric] for r in results])
        if len(feats) < 2:
            raise ValueError(f'FID needs at least 2 images, got {len(feats)}')
        pred, gt = feats[:, 0], feats[:, 1]
        fid, _, _ = FrechetInceptionDistance._calc_fid(
            pred.mean(0), np.cov(pred, rowvar=False), gt.mean(0), np.cov(gt, rowvar=False))
        return {self.metric: fid}
