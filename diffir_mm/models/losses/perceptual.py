"""VGG19 perceptual loss whose weights come from a local file (never downloaded)."""
from __future__ import annotations

import os
import warnings
from typing import Dict, Optional

import torch
import torch.nn.functional as F
from mmagic.registry import MODELS
from torch import nn
from torchvision.models import vgg19

from diffir_mm.checkpoint import load_state_dict_file

#: Index of each VGG19 conv layer in ``torchvision.models.vgg19().features`` (pre-ReLU output).
VGG19_LAYERS = {
    'conv1_1': 0, 'conv1_2': 2, 'conv2_1': 5, 'conv2_2': 7, 'conv3_1': 10, 'conv3_2': 12,
    'conv3_3': 14, 'conv3_4': 16, 'conv4_1': 19, 'conv4_2': 21, 'conv4_3': 23, 'conv4_4': 25,
    'conv5_1': 28, 'conv5_2': 30, 'conv5_3': 32, 'conv5_4': 34,
}
#: Official DiffIR / Real-ESRGAN layer weights.
DIFFIR_LAYER_WEIGHTS = {'conv1_2': 0.1, 'conv2_2': 0.1, 'conv3_4': 1.0, 'conv4_4': 1.0,
                        'conv5_4': 1.0}


@MODELS.register_module()
class VGGPerceptualLoss(nn.Module):
    """L1 distance of pre-ReLU VGG19 features (BasicSR-style ``PerceptualLoss``).

    Args:
        vgg_path: Local torchvision ``vgg19`` state dict (e.g. ``vgg19-dcbb9e9d.pth``). Required
            unless ``allow_random_weights`` (tests only).
        layer_weights: ``{'conv1_2': 0.1, ...}``; official DiffIR weights by default.
        perceptual_weight: Multiplier of the perceptual term.
        style_weight: Multiplier of the Gram-matrix style term (0: off).
        use_input_norm: Normalise [0, 1] RGB inputs with the ImageNet mean/std.
        criterion: ``'l1'`` or ``'mse'``.
        allow_random_weights: Permit ``vgg_path=None`` (random VGG, for tests).
    """

    def __init__(self, vgg_path: Optional[str] = None,
                 layer_weights: Optional[Dict[str, float]] = None,
                 perceptual_weight: float = 1.0, style_weight: float = 0.0,
                 use_input_norm: bool = True, criterion: str = 'l1',
                 allow_random_weights: bool = False) -> None:
        super().__init__()
        self.layer_weights = dict(layer_weights or DIFFIR_LAYER_WEIGHTS)
        unknown = set(self.layer_weights) - set(VGG19_LAYERS)
        if unknown:
            raise ValueError(f'unknown VGG19 layers {sorted(unknown)}; use {list(VGG19_LAYERS)}')
        net = vgg19(weights=None)
        if not vgg_path and not allow_random_weights:
            raise ValueError('VGGPerceptualLoss needs vgg_path (a local torchvision vgg19 '
                             'state dict); nothing is downloaded')
        self.vgg_path = vgg_path
        self.allow_random_weights = allow_random_weights
        self._loaded = False
        last = max(VGG19_LAYERS[k] for k in self.layer_weights)
        self.features = net.features[:last + 1].requires_grad_(False).eval()
        # torchvision's ReLUs are in-place: they would overwrite the stored conv outputs with
        # their post-ReLU values. The official extractor keeps the pre-ReLU features.
        for layer in self.features:
            if isinstance(layer, nn.ReLU):
                layer.inplace = False
        self._taps = {VGG19_LAYERS[k]: k for k in self.layer_weights}
        self.perceptual_weight = perceptual_weight
        self.style_weight = style_weight
        self.use_input_norm = use_input_norm
        self.register_buffer('mean', torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer('std', torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))
        if criterion not in ('l1', 'mse'):
            raise ValueError(f"criterion must be 'l1' or 'mse', got {criterion!r}")
        self.criterion = F.l1_loss if criterion == 'l1' else F.mse_loss

    def init_weights(self) -> None:
        """Load the VGG19 weights from ``vgg_path`` (called when training starts).

        Evaluation and inference never need the file, so it is not read at construction.
        """
        if self._loaded:
            return
        if self.vgg_path:
            if not os.path.isfile(self.vgg_path):
                raise FileNotFoundError(
                    f'VGG19 weights not found: {self.vgg_path} (set the config key vgg_path to a '
                    'local torchvision vgg19 state dict; nothing is downloaded)')
            state = load_state_dict_file(self.vgg_path, 'VGG19 weights')
            state = {k[len('features.'):]: v for k, v in state.items()
                     if k.startswith('features.') and int(k.split('.')[1]) < len(self.features)}
            self.features.load_state_dict(state)
        else:
            warnings.warn('VGGPerceptualLoss uses random VGG19 weights (testing only)')
        self._loaded = True

    def train(self, mode: bool = True) -> 'VGGPerceptualLoss':
        super().train(mode)
        self.features.eval()
        return self

    def _extract(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        if self.use_input_norm:
            x = (x - self.mean) / self.std
        out = {}
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in self._taps:
                out[self._taps[i]] = x
        return out

    @staticmethod
    def _gram(x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        f = x.reshape(n, c, h * w)
        return f @ f.transpose(1, 2) / (c * h * w)

    def forward(self, pred: torch.Tensor, target: torch.Tensor):
        """Return ``(perceptual, style)``; a term is ``None`` when its weight is 0."""
        if not self._loaded:
            self.init_weights()
        fp = self._extract(pred)
        with torch.no_grad():
            ft = self._extract(target.detach())
        percep = style = None
        if self.perceptual_weight > 0:
            percep = sum(self.criterion(fp[k], ft[k]) * w
                         for k, w in self.layer_weights.items()) * self.perceptual_weight
        if self.style_weight > 0:
            style = sum(self.criterion(self._gram(fp[k]), self._gram(ft[k])) * w
                        for k, w in self.layer_weights.items()) * self.style_weight
        return percep, style
