"""ResNet-PL: LaMa's high-receptive-field perceptual loss on ADE20k segmentation features.

LaMa (``saicinpainting/training/losses/perceptual.py::ResNetPL``, ``models/ade20k``) compares the
four stage outputs of the encoder of CSAIL's ADE20k ``resnet50dilated-ppm_deepsup`` segmentation
model: ``loss_weight * sum_stages MSE(f(pred), f(gt))`` on ImageNet-normalised RGB in [0, 1]
(DiffIR weight 30). Encoder facts (CSAIL semantic-segmentation-pytorch, as copied by LaMa):

* deep stem: three 3x3 convs ``3->64 (stride 2), 64->64, 64->128`` each with BN + ReLU, then a 3x3
  stride-2 max-pool; bottleneck stages ``[3, 4, 6, 3]`` of widths 64/128/256/512 (x4), stride on
  the 3x3 conv;
* dilation to output stride 8: the strides of stages 3 and 4 become 1, their 3x3 convs get
  dilation 2 and 4 (the first block of each stage keeps the previous dilation: 1 and 2), which
  is torchvision's ``replace_stride_with_dilation=[False, True, True]`` rule;
* weights: ``ade20k/ade20k-resnet50dilated-ppm_deepsup/encoder_epoch_20.pth`` (keys ``conv1.*``,
  ``bn1.*``, ..., ``layer4.2.bn3.*``), also found as ``loss_resnet_pl.impl.*`` in LaMa/DiffIR
  Lightning checkpoints. The file is read from a local path (nothing is downloaded).

The encoder's weights are frozen. Its BatchNorm follows the loss's train / eval mode by default
(``norm_eval=False``): in training it normalises with the statistics of the batch, as in the
runs that produced the released weights. LaMa's and DiffIR's ``ResNetPL`` call ``impl.eval()``
once when built, but the loss is a child of the Lightning module, and PyTorch-Lightning (1.2.9
in DiffIR-inpainting's requirements) calls ``model.train()`` on the whole module when training
starts and after every validation (``num_sanity_val_steps: 8`` runs one before the first step),
which puts the encoder back in train mode for the whole training. ``pred`` and ``target`` go
through the encoder in separate calls, so each is normalised with its own statistics (per GPU;
no synchronised BatchNorm). ``norm_eval=True`` keeps the encoder in eval mode (the checkpoint's
running statistics, what ``impl.eval()`` intended); its loss values differ from the official
runs'.
"""
from __future__ import annotations

import os
import re
import warnings
from typing import List, Optional

import torch
import torch.nn.functional as F
from mmagic.registry import MODELS
from torch import nn
from torchvision.models.resnet import Bottleneck

from diffir_mm.checkpoint import load_state_dict_file

__all__ = ['ADE20kResNet50Dilated', 'ResNetPLLoss', 'ADE20K_ENCODER_FILE']

#: Path of the encoder weights inside LaMa's ``TORCH_HOME``-style weights folder.
ADE20K_ENCODER_FILE = os.path.join('ade20k', 'ade20k-resnet50dilated-ppm_deepsup',
                                   'encoder_epoch_20.pth')
_PREFIXES = re.compile(r'^(module\.|loss_resnet_pl\.|impl\.|encoder\.)+')


def _conv_bn_relu(cin: int, cout: int, stride: int = 1) -> List[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True)]


class ADE20kResNet50Dilated(nn.Module):
    """CSAIL's ADE20k ResNet50-dilated encoder (output stride 8), returning its 4 stage outputs.

    Module names match the official ``encoder_epoch_20.pth`` keys.
    """

    def __init__(self) -> None:
        super().__init__()
        for i, (cin, cout, stride) in enumerate([(3, 64, 2), (64, 64, 1), (64, 128, 1)], 1):
            conv, bn, relu = _conv_bn_relu(cin, cout, stride)
            setattr(self, f'conv{i}', conv)
            setattr(self, f'bn{i}', bn)
            setattr(self, f'relu{i}', relu)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        inplanes, dilation = 128, 1
        for i, (planes, blocks, stride, dilate) in enumerate(
                [(64, 3, 1, False), (128, 4, 2, False), (256, 6, 2, True), (512, 3, 2, True)], 1):
            first_dilation = dilation
            if dilate:
                dilation, stride = dilation * stride, 1
            downsample = None
            if stride != 1 or inplanes != planes * 4:
                downsample = nn.Sequential(nn.Conv2d(inplanes, planes * 4, 1, stride=stride,
                                                     bias=False), nn.BatchNorm2d(planes * 4))
            layers = [Bottleneck(inplanes, planes, stride, downsample, dilation=first_dilation)]
            inplanes = planes * 4
            layers += [Bottleneck(inplanes, planes, dilation=dilation) for _ in range(blocks - 1)]
            setattr(self, f'layer{i}', nn.Sequential(*layers))

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        """Stage outputs (256, 512, 1024, 2048 channels at strides 4, 8, 8, 8)."""
        for i in (1, 2, 3):
            x = getattr(self, f'relu{i}')(getattr(self, f'bn{i}')(getattr(self, f'conv{i}')(x)))
        x = self.maxpool(x)
        features = []
        for i in (1, 2, 3, 4):
            x = getattr(self, f'layer{i}')(x)
            features.append(x)
        return features

    def load_official(self, path: str) -> None:
        """Load ``encoder_epoch_20.pth`` (a file, or LaMa's weights folder holding it).

        Accepts the plain keys and the ``module.`` / ``loss_resnet_pl.impl.`` prefixes of
        wrapped and Lightning checkpoints; ``num_batches_tracked`` may be absent.
        """
        if os.path.isdir(path):
            path = os.path.join(path, ADE20K_ENCODER_FILE)
        if not os.path.isfile(path):
            raise FileNotFoundError(f'ADE20k ResNet50-dilated encoder weights not found: {path} '
                                    f'(set weights_path to {ADE20K_ENCODER_FILE} from '
                                    'LaMa\'s weights; nothing is downloaded)')
        state = load_state_dict_file(path, 'ADE20k ResNet50-dilated encoder weights')
        own = self.state_dict()
        mapped = {}
        for key, value in state.items():
            key = _PREFIXES.sub('', key)
            if key in own:
                mapped[key] = value
        missing = [k for k in own if k not in mapped and not k.endswith('num_batches_tracked')]
        if missing:
            raise KeyError(f'{path} is not an ADE20k ResNet50-dilated encoder: {len(missing)} '
                           f'weights missing, e.g. {missing[0]}')
        wrong = [k for k, v in mapped.items() if v.shape != own[k].shape]
        if wrong:
            raise ValueError(f'{path}: {wrong[0]} has shape {tuple(mapped[wrong[0]].shape)}, '
                             f'expected {tuple(own[wrong[0]].shape)}')
        self.load_state_dict(mapped, strict=False)


@MODELS.register_module()
class ResNetPLLoss(nn.Module):
    """``loss_weight * sum_stages MSE(encoder(pred), encoder(gt))`` on ADE20k features.

    Args:
        weights_path: ``encoder_epoch_20.pth`` or LaMa's weights folder (``TORCH_HOME``) holding
            ``ade20k/ade20k-resnet50dilated-ppm_deepsup/encoder_epoch_20.pth``. Required unless
            ``allow_random_weights`` (tests only). Read on the first call (or ``init_weights``).
        loss_weight: Weight (official 30).
        norm_eval: False (default, as the official runs): the encoder's BatchNorm uses batch
            statistics in training. True: always the checkpoint's running statistics (see the
            module docstring).
        allow_random_weights: Permit ``weights_path=None`` (random encoder, tests only).
    """

    def __init__(self, weights_path: Optional[str] = None, loss_weight: float = 30.0,
                 norm_eval: bool = False, allow_random_weights: bool = False) -> None:
        super().__init__()
        if not weights_path and not allow_random_weights:
            raise ValueError('ResNetPLLoss needs weights_path (a local ADE20k '
                             f'{ADE20K_ENCODER_FILE}); nothing is downloaded')
        self.weights_path = weights_path
        self.loss_weight = loss_weight
        self.norm_eval = norm_eval
        self.encoder = ADE20kResNet50Dilated().requires_grad_(False)
        self.register_buffer('mean', torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer('std', torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))
        self._loaded = False
        self.train(False)

    def init_weights(self) -> None:
        """Read the encoder weights (once)."""
        if self._loaded:
            return
        if self.weights_path:
            self.encoder.load_official(self.weights_path)
        else:
            warnings.warn('ResNetPLLoss uses a random encoder (testing only)')
        self._loaded = True

    def train(self, mode: bool = True) -> 'ResNetPLLoss':
        super().train(mode)
        if self.norm_eval:
            self.encoder.eval()
        return self

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Loss of RGB ``[0, 1]`` images ``(B, 3, H, W)``; gradients flow into ``pred``."""
        self.init_weights()
        pred_feats = self.encoder((pred - self.mean) / self.std)
        with torch.no_grad():
            target_feats = self.encoder((target - self.mean) / self.std)
        losses = [F.mse_loss(p, t) for p, t in zip(pred_feats, target_feats)]
        return torch.stack(losses).sum() * self.loss_weight
