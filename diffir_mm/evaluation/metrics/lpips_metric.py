"""LPIPS (Zhang et al., CVPR 2018) as an mmagic sample-wise metric."""
from __future__ import annotations

import contextlib
import io
import warnings
from typing import Optional

import torch
from mmagic.registry import METRICS

from diffir_mm.checkpoint import load_state_dict_file

from .base_perceptual_metric import BasePerceptualMetric, map_features_state_dict

__all__ = ['LPIPS']

#: torchvision file names of the ImageNet backbones LPIPS expects.
LPIPS_BACKBONE_FILES = {
    'vgg': 'vgg16-397923af.pth',
    'alex': 'alexnet-owt-7be5be79.pth',
    'squeeze': 'squeezenet1_1-b8a52dc0.pth',
}


@METRICS.register_module()
class LPIPS(BasePerceptualMetric):
    """Learned Perceptual Image Patch Similarity (lower is better).

    Uses the ``lpips`` package (v0.1 linear calibration layers, which ship inside the package) on
    top of an ImageNet backbone whose weights are read from a **local** torchvision state-dict file;
    nothing is downloaded. Inputs follow the official DiffIR scripts (``Metric/LPIPS.py``,
    ``metrics/LPIPS.py``): RGB images scaled to ``[-1, 1]``, whole image, ``lpips.LPIPS(net=...)``
    with its defaults (``version='0.1'``, ``spatial=False``).

    * Real-world SR protocol:
      ``dict(type='LPIPS', net='vgg', backbone_path='checkpoints/vgg16-397923af.pth')``.
    * GAN-based bicubic SR protocol (the GT is cropped to a multiple of 4):
      ``dict(type='LPIPS', net='alex', gt_crop_multiple=4,
      backbone_path='checkpoints/alexnet-owt-7be5be79.pth')``.

    Args:
        net: Backbone, ``'vgg'`` (VGG16), ``'alex'`` (AlexNet) or ``'squeeze'`` (SqueezeNet 1.1).
        backbone_path: Local torchvision state dict of the backbone (``vgg16-397923af.pth``,
            ``alexnet-owt-7be5be79.pth``, ``squeezenet1_1-b8a52dc0.pth`` as in torch's hub cache;
            keys ``features.*``). Required unless ``allow_random_weights``.
        lin_path: LPIPS linear-layer weights; None uses the file bundled with the ``lpips`` package
            (``lpips/weights/v0.1/<net>.pth``).
        version: LPIPS version, ``'0.1'`` (default) or ``'0.0'``.
        allow_random_weights: Allow ``backbone_path=None`` and use a randomly initialised backbone.
            The values are then meaningless; for tests only. Without it, a missing ``backbone_path``
            raises ``ValueError``.
        gt_key, pred_key, crop_border, gt_crop_multiple, input_order, device, collect_device,
            prefix: See
            :class:`~diffir_mm.evaluation.metrics.base_perceptual_metric.BasePerceptualMetric`.

    Metrics:
        - LPIPS (float): mean LPIPS distance over the images.
    """

    metric = 'LPIPS'

    def __init__(self,
                 net: str = 'vgg',
                 backbone_path: Optional[str] = None,
                 lin_path: Optional[str] = None,
                 version: str = '0.1',
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
        import lpips

        net = 'vgg' if net == 'vgg16' else net
        if net not in LPIPS_BACKBONE_FILES:
            raise ValueError(f"LPIPS net must be one of "
                             f"{sorted(LPIPS_BACKBONE_FILES)}, got {net!r}")
        if backbone_path is None and not allow_random_weights:
            raise ValueError(
                f'LPIPS(net={net!r}) needs backbone_path, a local torchvision '
                f'state dict ({LPIPS_BACKBONE_FILES[net]}); nothing is '
                'downloaded. Pass allow_random_weights=True only in tests.')
        self.net_type = net
        self.backbone_path = backbone_path
        self.lin_path = lin_path
        # pnet_rand=True: build the backbone without torchvision weights (no
        # download); the real backbone weights are loaded below.
        with contextlib.redirect_stdout(io.StringIO()), \
                warnings.catch_warnings():
            warnings.simplefilter('ignore', UserWarning)
            model = lpips.LPIPS(
                pretrained=True,
                net=net,
                version=version,
                pnet_rand=True,
                model_path=lin_path,
                verbose=False)
        if backbone_path is not None:
            state = load_state_dict_file(backbone_path,
                                         f'LPIPS {net} backbone weights')
            stages = {
                name: module
                for name, module in model.net.named_children()
                if name.startswith('slice')
            }
            mapped = map_features_state_dict(state, stages,
                                             f'LPIPS {net} backbone')
            missing, _ = model.net.load_state_dict(mapped, strict=False)
            if missing:
                raise KeyError(f'LPIPS {net} backbone {backbone_path!r} lacks '
                               f'{len(missing)} keys, e.g. {missing[:3]}')
        else:
            warnings.warn(
                f'LPIPS(net={net!r}) uses a RANDOMLY initialised backbone '
                '(allow_random_weights=True): the values are meaningless and '
                'only suitable for tests.')
        self._net = model.eval().requires_grad_(False)

    def compute(self, gt: torch.Tensor, pred: torch.Tensor) -> torch.Tensor:
        """LPIPS of RGB ``[0, 1]`` images (scaled to ``[-1, 1]`` here).

        Args:
            gt: ``(1, 3, H, W)`` reference.
            pred: ``(1, 3, H, W)`` restored image.

        Returns:
            The distance, shape ``(1, 1, 1, 1)``.
        """
        # Official scripts call loss_fn(restored, gt) on [-1, 1] inputs.
        return self.net(pred * 2 - 1, gt * 2 - 1)
