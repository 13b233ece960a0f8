"""DISTS (Ding et al., TPAMI 2020) as an mmagic sample-wise metric.

An own implementation of the published method (the reference PyTorch code is
``DISTS_pytorch/DISTS_pt.py`` of ``dingkeyan93/DISTS``, which the official DiffIR
``Metric/dists.py`` copies): ImageNet-normalised VGG16 features whose max-pools are replaced by "L2
pooling" (a 3x3 Hann-window low-pass of the squared features, stride 2), texture (mean) and
structure (covariance) terms per channel of the raw image and of the five
``relu{1_2,2_2,3_3,4_3,5_3}`` stages, weighted by the learned ``alpha``/``beta`` and returned as
``1 - sum(...)``. ``piq`` also has a DISTS, but it always downloads its weights, so it is not used
here.
"""
from __future__ import annotations

import os
import warnings
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from mmagic.registry import METRICS
from torch import nn

from diffir_mm.checkpoint import load_state_dict_file

from .base_perceptual_metric import BasePerceptualMetric, map_features_state_dict

__all__ = ['DISTS', 'DISTSNet', 'L2Pooling']

#: ``vgg16().features`` index ranges of the five DISTS stages (the pooling
#: layers 4, 9, 16, 23 become :class:`L2Pooling`).
_STAGE_LAYERS: Tuple[Tuple[int, int], ...] = ((0, 4), (5, 9), (10, 16),
                                              (17, 23), (24, 30))
_STAGE_POOL_CHANNELS = (None, 64, 128, 256, 512)
#: Channels of the six compared feature sets (image + five stages).
DISTS_CHANNELS = (3, 64, 128, 256, 512, 512)


class L2Pooling(nn.Module):
    """Hann-window L2 pooling: ``sqrt(lowpass(x ** 2) + 1e-12)``, stride 2.

    Args:
        channels: Number of feature channels (depth-wise filter).
        filter_size: Hann window length (the outer zeros are dropped, so 5 gives the 3x3 filter of
            the paper).
        stride: Stride.
    """

    def __init__(self, channels: int, filter_size: int = 5,
                 stride: int = 2) -> None:
        super().__init__()
        self.padding = (filter_size - 2) // 2
        self.stride = stride
        self.channels = channels
        window = np.hanning(filter_size)[1:-1]
        kernel = torch.tensor(window[:, None] * window[None, :],
                              dtype=torch.float32)
        kernel = kernel / kernel.sum()
        self.register_buffer('filter',
                             kernel[None, None].repeat(channels, 1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Pool ``x``.

        Args:
            x: ``(N, C, H, W)`` features.

        Returns:
            ``(N, C, H', W')`` pooled features.
        """
        out = F.conv2d(
            x**2,
            self.filter,
            stride=self.stride,
            padding=self.padding,
            groups=x.shape[1])
        return (out + 1e-12).sqrt()


class DISTSNet(nn.Module):
    """The DISTS network: VGG16 stages with L2 pooling plus alpha/beta.

    Args:
        backbone_path: Local torchvision ``vgg16`` state dict (``vgg16-397923af.pth``). None keeps
            random weights.
        weights_path: Local DISTS ``alpha``/``beta`` file: the reference ``weights.pt``
            (``{'alpha': (1, 1475, 1, 1), 'beta': ...}``) or ``alpha_beta.mat``. None keeps the
            random initialisation ``N(0.1, 0.01)``.
    """

    def __init__(self,
                 backbone_path: Optional[str] = None,
                 weights_path: Optional[str] = None) -> None:
        super().__init__()
        from torchvision.models.vgg import cfgs, make_layers

        # == torchvision.models.vgg16().features, without the classifier
        features = make_layers(cfgs['D'], batch_norm=False)
        for i, (start, stop) in enumerate(_STAGE_LAYERS):
            stage = nn.Sequential()
            if _STAGE_POOL_CHANNELS[i] is not None:
                stage.add_module(
                    str(start - 1), L2Pooling(_STAGE_POOL_CHANNELS[i]))
            for idx in range(start, stop):
                stage.add_module(str(idx), features[idx])
            self.add_module(f'stage{i + 1}', stage)
        self.register_buffer(
            'mean',
            torch.tensor([0.485, 0.456, 0.406]).view(1, -1, 1, 1))
        self.register_buffer(
            'std',
            torch.tensor([0.229, 0.224, 0.225]).view(1, -1, 1, 1))
        self.chns = list(DISTS_CHANNELS)
        self.alpha = nn.Parameter(
            torch.empty(1, sum(self.chns), 1, 1).normal_(0.1, 0.01))
        self.beta = nn.Parameter(
            torch.empty(1, sum(self.chns), 1, 1).normal_(0.1, 0.01))
        if backbone_path is not None:
            self.load_backbone(backbone_path)
        if weights_path is not None:
            self.load_alpha_beta(weights_path)
        self.requires_grad_(False)

    @property
    def stages(self) -> Dict[str, nn.Module]:
        """The five VGG stages by name."""
        return {f'stage{i + 1}': getattr(self, f'stage{i + 1}')
                for i in range(len(_STAGE_LAYERS))}

    def load_backbone(self, path: str) -> None:
        """Load a torchvision ``vgg16`` state dict into the stages.

        Args:
            path: Local ``.pth`` file.
        """
        state = load_state_dict_file(path, 'DISTS VGG16 backbone weights')
        mapped = map_features_state_dict(state, self.stages,
                                         'DISTS VGG16 backbone')
        missing, unexpected = self.load_state_dict(mapped, strict=False)
        missing = [k for k in missing if k.startswith('stage')
                   and not k.endswith('.filter')]
        if missing:
            raise KeyError(f'DISTS backbone {path!r} lacks {len(missing)} '
                           f'keys, e.g. {missing[:3]}')

    def load_alpha_beta(self, path: str) -> None:
        """Load the learned ``alpha``/``beta`` weights.

        Args:
            path: ``weights.pt`` (a dict with ``alpha``/``beta``) or the MATLAB/TensorFlow
                ``alpha_beta.mat``.
        """
        if path.endswith('.mat'):
            if not os.path.isfile(path):
                raise FileNotFoundError(
                    f'DISTS alpha/beta not found: {path!r}')
            from scipy.io import loadmat
            mat = loadmat(path)
            state = {k: torch.from_numpy(np.asarray(mat[k], np.float32))
                     for k in ('alpha', 'beta')}
        else:
            state = load_state_dict_file(path, 'DISTS alpha/beta weights')
        for key in ('alpha', 'beta'):
            if key not in state:
                raise KeyError(f'DISTS weights {path!r} have no {key!r}')
            value = torch.as_tensor(state[key], dtype=torch.float32)
            if value.numel() != sum(self.chns):
                raise ValueError(f'DISTS {key} has {value.numel()} values, '
                                 f'expected {sum(self.chns)}')
            getattr(self, key).data.copy_(value.reshape(1, -1, 1, 1))

    def features(self, x: torch.Tensor) -> List[torch.Tensor]:
        """Image plus the five stage outputs.

        Args:
            x: ``(N, 3, H, W)`` RGB in ``[0, 1]``.

        Returns:
            Six feature maps.
        """
        feats = [x]
        h = (x - self.mean) / self.std
        for stage in self.stages.values():
            h = stage(h)
            feats.append(h)
        return feats

    def forward(self, ref: torch.Tensor, dist: torch.Tensor) -> torch.Tensor:
        """DISTS distance (0 for identical images).

        Args:
            ref: ``(N, 3, H, W)`` reference, RGB ``[0, 1]``.
            dist: ``(N, 3, H, W)`` distorted image, RGB ``[0, 1]``.

        Returns:
            ``(N,)`` distances.
        """
        feats0, feats1 = self.features(ref), self.features(dist)
        c1 = c2 = 1e-6
        w_sum = self.alpha.sum() + self.beta.sum()
        alpha = torch.split(self.alpha / w_sum, self.chns, dim=1)
        beta = torch.split(self.beta / w_sum, self.chns, dim=1)
        dist1 = dist2 = 0
        for k, (f0, f1) in enumerate(zip(feats0, feats1)):
            m0 = f0.mean([2, 3], keepdim=True)
            m1 = f1.mean([2, 3], keepdim=True)
            texture = (2 * m0 * m1 + c1) / (m0**2 + m1**2 + c1)
            dist1 = dist1 + (alpha[k] * texture).sum(1, keepdim=True)
            var0 = ((f0 - m0)**2).mean([2, 3], keepdim=True)
            var1 = ((f1 - m1)**2).mean([2, 3], keepdim=True)
            cov = (f0 * f1).mean([2, 3], keepdim=True) - m0 * m1
            structure = (2 * cov + c2) / (var0 + var1 + c2)
            dist2 = dist2 + (beta[k] * structure).sum(1, keepdim=True)
        return 1 - (dist1 + dist2).reshape(-1)


@METRICS.register_module()
class DISTS(BasePerceptualMetric):
    """Deep Image Structure and Texture Similarity (lower is better).

    Computed on the whole RGB image in ``[0, 1]`` (no resizing), as the official DiffIR
    ``Metric/dists.py``. Weights come from local files only.

    Example::

        dict(type='DISTS',
             backbone_path='checkpoints/vgg16-397923af.pth',
             weights_path='checkpoints/DISTS_weights.pt')

    Args:
        backbone_path: Local torchvision ``vgg16`` state dict (``vgg16-397923af.pth``). Required
            unless ``allow_random_weights``.
        weights_path: Local DISTS ``alpha``/``beta`` file (``weights.pt`` of the DISTS release, or
            ``alpha_beta.mat``). Required unless ``allow_random_weights``.
        allow_random_weights: Allow missing paths and use random weights instead (meaningless
            values, tests only).
        gt_key, pred_key, crop_border, gt_crop_multiple, input_order, device, collect_device,
            prefix: See
            :class:`~diffir_mm.evaluation.metrics.base_perceptual_metric.BasePerceptualMetric`.

    Metrics:
        - DISTS (float): mean DISTS distance over the images.
    """

    metric = 'DISTS'

    def __init__(self,
                 backbone_path: Optional[str] = None,
                 weights_path: Optional[str] = None,
                 allow_random_weights: bool = False,
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
            crop_border=crop_border,
            gt_crop_multiple=gt_crop_multiple,
            input_order=input_order,
            device=device,
            collect_device=collect_device,
            prefix=prefix)
        missing = [name for name, path in (('backbone_path', backbone_path),
                                           ('weights_path', weights_path))
                   if path is None]
        if missing and not allow_random_weights:
            raise ValueError(
                f'DISTS needs {" and ".join(missing)}: a local torchvision '
                'vgg16 state dict (vgg16-397923af.pth) and the DISTS '
                'alpha/beta file (weights.pt); nothing is downloaded. Pass '
                'allow_random_weights=True only in tests.')
        if missing:
            warnings.warn(f'DISTS uses RANDOM weights for {missing} '
                          '(allow_random_weights=True): the values are '
                          'meaningless and only suitable for tests.')
        self.backbone_path = backbone_path
        self.weights_path = weights_path
        self._net = DISTSNet(backbone_path, weights_path).eval()

    def compute(self, gt: torch.Tensor, pred: torch.Tensor) -> torch.Tensor:
        """DISTS of RGB ``[0, 1]`` images.

        Args:
            gt: ``(1, 3, H, W)`` reference.
            pred: ``(1, 3, H, W)`` restored image.

        Returns:
            ``(1,)`` distance.
        """
        return self.net(gt, pred)
