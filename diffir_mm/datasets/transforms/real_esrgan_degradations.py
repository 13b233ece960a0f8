"""CPU transforms for the official (BasicSR / Real-ESRGAN) second-order degradation that
DiffIR-RealSR trains with (docs/advanced_guides/method.md §4.4).

mmagic 1.2.0 already ships Real-ESRGAN-style CPU degradations (``RandomBlur``, ``RandomResize``,
``RandomNoise``, ``RandomJPEGCompression``, ``DegradationsWithShuffle``), but they cannot express
the official recipe exactly. The transforms here fill only those gaps:

==========================  ===============================================
official behaviour          mmagic 1.2.0 / here
==========================  ===============================================
generalized / plateau       ``RandomBlur`` draws one ``beta`` in the whole
kernels: beta drawn 50/50   range first and then passes ``[beta, beta]`` to
from ``[lo, 1]`` or         ``random_mixed_kernels``, which re-draws between
``[1, hi]``                 ``beta`` and 1 -> a different distribution. It
                            also filters uint8 inputs in uint8 (rounding
                            after each blur). :class:`RealESRGANRandomBlur`
                            samples every kernel like BasicSR (sinc cut-off
                            ``[pi/3, pi]`` below size 13, else
                            ``[pi/5, pi]``) and filters in float32.
second resize relative to   ``RandomResize`` only scales the *current* size.
the final LR size           :class:`RealESRGANRandomResize` scales either the
(``gt / scale * factor``);  current size (first order) or the target LR size
final resize to exactly     ``gt // scale`` (second order, final resize).
``gt // scale``
noise clipped to [0, 1];    ``RandomNoise`` never clips and draws Poisson
Poisson noise on the        noise on 0-255 values, which makes it about
[0, 1] image                ``sqrt(255) ~ 16x`` weaker than the official one.
                            :class:`RealESRGANRandomNoise` fixes both.
round to 8 bit at the end   :class:`Quantize`.
crop/pad the GT to 400      ``Crop`` never pads (or pads with zeros);
(reflect padding)           :class:`PadToMinSize` reflect-pads first.
==========================  ===============================================

What mmagic expresses as is (used unchanged in ``configs/_base_/datasets/realsr_df2k_ost.py``):
``Flip`` (hflip), ``Crop``, ``UnsharpMasking`` (= BasicSR ``USMSharp``: kernel 51, weight 0.5,
threshold 10; the official models re-sharpen the cropped GT, which is what running it after
``PairedRandomCrop`` does), ``PairedRandomCrop``, ``CopyValues``, ``SetValues``,
``RandomJPEGCompression`` (with ``bgr2rgb=True`` for RGB images; OpenCV JPEG with an integer quality
instead of the official differentiable JPEG) and mmcv's ``RandomChoice`` for the 50/50 order of
{final resize + sinc, JPEG} (``DegradationsWithShuffle`` cannot hold the transforms above, nor pass
``bgr2rgb``).

All transforms take ``HxWxC`` (or ``HxW``) numpy images with values in ``[0, 255]`` (uint8 or float)
in the ``results`` dict and draw their random numbers from NumPy's global generator, like mmagic's.
"""
from __future__ import annotations

from typing import Dict, List, Sequence, Tuple, Union

import cv2
import numpy as np
from mmcv.transforms import BaseTransform
from mmagic.datasets.transforms import blur_kernels
from mmagic.registry import TRANSFORMS

__all__ = [
    'RealESRGANRandomBlur', 'RealESRGANRandomResize', 'RealESRGANRandomNoise',
    'Quantize', 'PadToMinSize', 'GenerateRealESRGANKernels'
]

#: Official blur kernel sizes: ``[2 * v + 1 for v in range(3, 11)]``.
REAL_ESRGAN_KERNEL_SIZES = [7, 9, 11, 13, 15, 17, 19, 21]

_INTERPOLATION = dict(
    area=cv2.INTER_AREA,
    bilinear=cv2.INTER_LINEAR,
    bicubic=cv2.INTER_CUBIC,
    nearest=cv2.INTER_NEAREST,
    lanczos=cv2.INTER_LANCZOS4)

Image = np.ndarray
ImageOrList = Union[Image, List[Image]]


def _apply(imgs: ImageOrList, fn) -> ImageOrList:
    """Apply ``fn`` to one image or to every image of a list."""
    if isinstance(imgs, (list, tuple)):
        return [fn(img) for img in imgs]
    return fn(imgs)


def _keep_channel_dim(out: Image, ref: Image) -> Image:
    """OpenCV drops a trailing singleton channel; put it back."""
    if ref.ndim == 3 and out.ndim == 2:
        out = out[..., None]
    return out


def _first(imgs: ImageOrList) -> Image:
    return imgs[0] if isinstance(imgs, (list, tuple)) else imgs


def _skip(params: dict, rng=np.random) -> bool:
    """True with probability ``1 - params['prob']`` (no draw if prob is 1).

    ``rng`` is NumPy's global generator (the transforms) or a ``np.random.Generator`` (the batched
    degradation of :mod:`diffir_mm.models.data_preprocessors`).
    """
    prob = params.get('prob', 1)
    return prob < 1 and rng.uniform() >= prob


@TRANSFORMS.register_module()
class RealESRGANRandomBlur(BaseTransform):
    """Blur with a random kernel sampled like BasicSR's Real-ESRGAN dataset.

    The kernel type is drawn from ``kernel_list``/``kernel_prob`` (``'sinc'`` may be one of them:
    the official ``sinc_prob=p`` equals listing ``'sinc'`` with probability ``p`` and scaling the
    others by ``1 - p``), the size from ``kernel_size``, and every shape parameter uniformly from
    its full range with :func:`mmagic...blur_kernels.random_mixed_kernels` (which follows BasicSR,
    incl. the 50/50 split of the ``beta`` ranges around 1). Images are filtered in float32 with
    reflect-101 borders (as BasicSR's ``filter2D``); the output is float32.

    Args:
        params: Degradation settings:

            - ``kernel_list`` (list[str]): among ``iso``, ``aniso``,
              ``generalized_iso``, ``generalized_aniso``, ``plateau_iso``,
              ``plateau_aniso``, ``sinc``.
            - ``kernel_prob`` (list[float]): their probabilities.
            - ``kernel_size`` (list[int] | int): odd sizes to choose from.
              Default: 7, 9, ..., 21 (official).
            - ``sigma_x``, ``sigma_y`` (list[float]): Gaussian std ranges.
              ``sigma_y`` defaults to ``sigma_x``.
            - ``rotate_angle`` (list[float]): default ``[-pi, pi]``.
            - ``beta_gaussian`` (list[float]): default ``[0.5, 4]``.
            - ``beta_plateau`` (list[float]): default ``[1, 2]``.
            - ``omega`` (list[float], optional): sinc cut-off range; None:
              ``[pi/3, pi]`` for sizes < 13, else ``[pi/5, pi]``.
            - ``prob`` (float): probability of blurring at all. Default: 1.
        keys: Keys of the images to blur (one kernel per call, shared by all listed keys and list
            items).
    """

    def __init__(self, params: dict, keys: Sequence[str] = ('img', )):
        self.params = dict(params)
        self.keys = list(keys)
        if len(self.params['kernel_list']) != len(self.params['kernel_prob']):
            raise ValueError('kernel_list and kernel_prob differ in length')
        sizes = self.params.get('kernel_size', REAL_ESRGAN_KERNEL_SIZES)
        self.kernel_sizes = [sizes] if isinstance(sizes, int) else list(sizes)
        if any(s % 2 == 0 for s in self.kernel_sizes):
            raise ValueError(f'kernel sizes must be odd: {self.kernel_sizes}')

    def get_kernel(self) -> np.ndarray:
        """Draw one kernel.

        Returns:
            A normalised ``(k, k)`` kernel.
        """
        p = self.params
        size = self.kernel_sizes[np.random.randint(len(self.kernel_sizes))]
        sigma_x = p.get('sigma_x', [0.2, 3])
        omega = p.get('omega')
        if omega is None:
            omega = [np.pi / 3, np.pi] if size < 13 else [np.pi / 5, np.pi]
        return blur_kernels.random_mixed_kernels(
            p['kernel_list'],
            p['kernel_prob'],
            size,
            sigma_x,
            p.get('sigma_y', sigma_x),
            p.get('rotate_angle', [-np.pi, np.pi]),
            p.get('beta_gaussian', [0.5, 4]),
            p.get('beta_plateau', [1, 2]),
            omega,
            None,
        )

    def transform(self, results: Dict) -> Dict:
        """Blur ``results[key]`` for every key."""
        if _skip(self.params):
            return results
        kernel = self.get_kernel().astype(np.float32)

        def blur(img: Image) -> Image:
            out = cv2.filter2D(
                img.astype(np.float32), -1, kernel,
                borderType=cv2.BORDER_REFLECT_101)
            return _keep_channel_dim(out, img)

        for key in self.keys:
            results[key] = _apply(results[key], blur)
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(params={self.params}, ' \
               f'keys={self.keys})'


@TRANSFORMS.register_module()
class RealESRGANRandomResize(BaseTransform):
    """Random up/down/keep resize of the official Real-ESRGAN pipeline.

    The output size is ``reference_size * factor``, where ``factor`` is drawn as in BasicSR: mode
    ``up``/``down``/``keep`` from ``resize_mode_prob``, then ``U(1, resize_scale[1])`` /
    ``U(resize_scale[0], 1)`` / 1. The interpolation is drawn from ``resize_opt``/``resize_prob``.

    ``reference`` selects the size that is scaled:

    * ``'input'``: the current image size (official first-order resize,
      ``F.interpolate(scale_factor=factor)``, i.e. ``int(h * factor)``);
    * ``'target'``: the final LR size ``gt / scale`` (official second-order resize:
      ``int(h_gt / scale * factor)``). Without ``resize_mode_prob`` the factor is 1 and the output
      is exactly ``(h_gt // scale, w_gt // scale)`` (the official final resize).

    Resized images are float32 (not rounded, as in the official pipeline).

    Args:
        params: Settings:

            - ``reference`` (str): ``'input'`` (default) or ``'target'``.
            - ``resize_mode_prob`` (list[float], optional): up/down/keep
              probabilities; None means factor 1.
            - ``resize_scale`` (list[float]): ``[min, max]`` factor.
            - ``resize_opt`` (list[str]): interpolations among ``area``,
              ``bilinear``, ``bicubic`` (official), ``nearest``, ``lanczos``.
              Default: ``['area', 'bilinear', 'bicubic']``.
            - ``resize_prob`` (list[float]): their probabilities (default
              uniform).
            - ``prob`` (float): probability of resizing at all. Default: 1.
        keys: Keys of the images to resize.
        gt_key: Key of the GT image (for ``reference='target'``).
        scale_key: Key of the SR scale in ``results`` (set it with
            ``SetValues(dictionary=dict(scale=...))``).
    """

    def __init__(self,
                 params: dict,
                 keys: Sequence[str] = ('img', ),
                 gt_key: str = 'gt',
                 scale_key: str = 'scale'):
        self.params = dict(params)
        self.keys = list(keys)
        self.gt_key = gt_key
        self.scale_key = scale_key
        self.reference = self.params.get('reference', 'input')
        if self.reference not in ('input', 'target'):
            raise ValueError("params['reference'] must be 'input' or "
                             f"'target', got {self.reference!r}")
        self.resize_opt = list(
            self.params.get('resize_opt', ['area', 'bilinear', 'bicubic']))
        unknown = [o for o in self.resize_opt if o not in _INTERPOLATION]
        if unknown:
            raise ValueError(f'unknown resize_opt {unknown}; use '
                             f'{sorted(_INTERPOLATION)}')
        self.resize_prob = self.params.get(
            'resize_prob', [1. / len(self.resize_opt)] * len(self.resize_opt))
        if self.params.get('resize_mode_prob') is not None and \
                'resize_scale' not in self.params:
            raise ValueError('resize_mode_prob needs resize_scale')

    def draw(self, rng=np.random) -> Tuple[float, str]:
        """Draw the factor (up/down/keep, then its value) and the interpolation.

        Args:
            rng: NumPy's global generator (default) or a ``np.random.Generator``.

        Returns:
            ``(factor, interpolation name)``.
        """
        factor = 1.
        mode_prob = self.params.get('resize_mode_prob')
        if mode_prob is not None:
            mode = rng.choice(['up', 'down', 'keep'], p=mode_prob)
            lo, hi = self.params['resize_scale']
            if mode == 'up':
                factor = float(rng.uniform(1, hi))
            elif mode == 'down':
                factor = float(rng.uniform(lo, 1))
        return factor, str(rng.choice(self.resize_opt, p=self.resize_prob))

    def _target_size(self, results: Dict, img: Image,
                     factor: float) -> Tuple[int, int]:
        if self.reference == 'input':
            h, w = img.shape[:2]
            return max(1, int(h * factor)), max(1, int(w * factor))
        if self.scale_key not in results:
            raise KeyError(
                f"RealESRGANRandomResize(reference='target') needs "
                f"results[{self.scale_key!r}]; add SetValues(dictionary="
                "dict(scale=...)) before it")
        scale = results[self.scale_key]
        h, w = _first(results[self.gt_key]).shape[:2]
        if self.params.get('resize_mode_prob') is None:
            return max(1, int(h // scale)), max(1, int(w // scale))
        return (max(1, int(h / scale * factor)),
                max(1, int(w / scale * factor)))

    def transform(self, results: Dict) -> Dict:
        """Resize ``results[key]`` for every key."""
        if _skip(self.params):
            return results
        factor, opt = self.draw()
        interpolation = _INTERPOLATION[opt]
        for key in self.keys:
            size = self._target_size(results, _first(results[key]), factor)

            def resize(img: Image, size=size) -> Image:
                if img.shape[:2] == size:
                    return img
                out = cv2.resize(
                    img.astype(np.float32), (size[1], size[0]),
                    interpolation=interpolation)
                return _keep_channel_dim(out, img)

            results[key] = _apply(results[key], resize)
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(params={self.params}, ' \
               f'keys={self.keys}, gt_key={self.gt_key!r})'


@TRANSFORMS.register_module()
class RealESRGANRandomNoise(BaseTransform):
    """Gaussian or Poisson noise exactly as the official Real-ESRGAN pipeline.

    * Gaussian: ``sigma ~ U(gaussian_sigma)`` in 0-255 units (the official ``noise_range`` values,
      e.g. ``[1, 30]``); with probability ``gray_noise_prob`` one noise map is shared by all
      channels.
    * Poisson: computed on the ``[0, 1]`` image as BasicSR's ``generate_poisson_noise``: round to 8
      bit, ``vals = 2 ** ceil(log2(#unique values))``, ``noise = Poisson(img * vals) / vals - img``,
      times ``scale ~ U(poisson_scale)``; gray noise is computed on the luma image
      (``0.299 R + 0.587 G + 0.114 B``) and shared by all channels.
    * The result is clipped to ``[0, 255]`` (official ``clip=True``) and not rounded
      (``rounds=False``). The output is float32.

    Args:
        params: Settings:

            - ``noise_type`` (list[str]): default ``['gaussian',
              'poisson']``.
            - ``noise_prob`` (list[float]): default ``[0.5, 0.5]`` (official
              ``gaussian_noise_prob=0.5``).
            - ``gaussian_sigma`` (list[float]): sigma range, 0-255 units.
            - ``poisson_scale`` (list[float]): Poisson scale range.
            - ``gray_noise_prob`` (float): gray-noise probability for both
              kinds; ``gaussian_gray_noise_prob`` /
              ``poisson_gray_noise_prob`` (mmagic's names) override it.
            - ``clip`` (bool): clip to ``[0, 255]``. Default: True.
            - ``prob`` (float): probability of adding noise at all.
        keys: Keys of the images.
        channel_order: ``'rgb'`` (default) or ``'bgr'``; only used for the luma of gray Poisson
            noise.
    """

    def __init__(self,
                 params: dict,
                 keys: Sequence[str] = ('img', ),
                 channel_order: str = 'rgb'):
        self.params = dict(params)
        self.keys = list(keys)
        if channel_order.lower() not in ('rgb', 'bgr'):
            raise ValueError(f"channel_order must be 'rgb' or 'bgr', got "
                             f'{channel_order!r}')
        self.channel_order = channel_order.lower()
        self.noise_type = list(
            self.params.get('noise_type', ['gaussian', 'poisson']))
        self.noise_prob = self.params.get('noise_prob', [0.5, 0.5])
        for kind in self.noise_type:
            if kind not in ('gaussian', 'poisson'):
                raise ValueError(f'unknown noise_type {kind!r}')

    def level_range(self, kind: str) -> Tuple[float, float]:
        """``gaussian_sigma`` (0-255 units) or ``poisson_scale`` range of ``kind``."""
        key = 'gaussian_sigma' if kind == 'gaussian' else 'poisson_scale'
        lo, hi = self.params[key]
        return float(lo), float(hi)

    def draw_kind(self, rng=np.random) -> str:
        """Draw ``'gaussian'`` or ``'poisson'`` from ``noise_type`` / ``noise_prob``."""
        return str(rng.choice(self.noise_type, p=self.noise_prob))

    def gray_prob(self, kind: str) -> float:
        """Gray-noise probability of ``kind``."""
        return float(
            self.params.get(f'{kind}_gray_noise_prob',
                            self.params.get('gray_noise_prob', 0)))

    def _luma(self, img: Image) -> Image:
        w = (0.299, 0.587, 0.114)
        if self.channel_order == 'bgr':
            w = w[::-1]
        return (img[..., 0] * w[0] + img[..., 1] * w[1] +
                img[..., 2] * w[2])[..., None]

    def _gaussian(self, img: Image, sigma: float, gray: bool) -> Image:
        shape = img.shape[:2] + (1, ) if gray and img.ndim == 3 else img.shape
        return np.random.randn(*shape).astype(np.float32) * sigma

    def _poisson(self, img: Image, scale: float, gray: bool) -> Image:
        x = img.astype(np.float32) / 255.
        if gray and x.ndim == 3 and x.shape[2] == 3:
            x = self._luma(x)
        x = np.clip(np.round(x * 255.), 0, 255) / 255.
        vals = 2**np.ceil(np.log2(len(np.unique(x))))
        noisy = np.random.poisson(x * vals).astype(np.float32) / vals
        return (noisy - x).astype(np.float32) * scale * 255.

    def transform(self, results: Dict) -> Dict:
        """Add noise to ``results[key]`` for every key."""
        if _skip(self.params):
            return results
        kind = self.draw_kind()
        level = float(np.random.uniform(*self.level_range(kind)))
        gray = bool(np.random.uniform() < self.gray_prob(kind))
        clip = self.params.get('clip', True)

        def add_noise(img: Image) -> Image:
            make = self._gaussian if kind == 'gaussian' else self._poisson
            out = img.astype(np.float32) + make(img, level, gray)
            return np.clip(out, 0, 255) if clip else out

        for key in self.keys:
            results[key] = _apply(results[key], add_noise)
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(params={self.params}, ' \
               f'keys={self.keys})'


@TRANSFORMS.register_module()
class Quantize(BaseTransform):
    """Round to 8 bit: ``clip(round(x), 0, 255)`` (official final step).

    Args:
        keys: Keys of the images.
        to_uint8: Return uint8 (default) instead of float32.
    """

    def __init__(self, keys: Sequence[str] = ('img', ), to_uint8: bool = True):
        self.keys = list(keys)
        self.to_uint8 = to_uint8

    def transform(self, results: Dict) -> Dict:
        """Quantize ``results[key]`` for every key."""

        def quantize(img: Image) -> Image:
            out = np.clip(np.round(img.astype(np.float32)), 0, 255)
            return out.astype(np.uint8 if self.to_uint8 else np.float32)

        for key in self.keys:
            results[key] = _apply(results[key], quantize)
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(keys={self.keys}, ' \
               f'to_uint8={self.to_uint8})'


@TRANSFORMS.register_module()
class PadToMinSize(BaseTransform):
    """Pad images at the bottom/right up to a minimum height and width.

    Official Real-ESRGAN pads GT images smaller than ``crop_pad_size`` (400) with
    ``cv2.BORDER_REFLECT_101`` before cropping; ``Crop`` in mmagic does not.

    Args:
        keys: Keys of the images.
        min_size: Minimum ``(h, w)``.
        border_mode: ``'reflect_101'`` (default), ``'reflect'``, ``'replicate'`` or ``'constant'``
            (zeros).
    """

    _BORDERS = dict(
        reflect_101=cv2.BORDER_REFLECT_101,
        reflect=cv2.BORDER_REFLECT,
        replicate=cv2.BORDER_REPLICATE,
        constant=cv2.BORDER_CONSTANT)

    def __init__(self,
                 keys: Sequence[str],
                 min_size: Union[int, Tuple[int, int]],
                 border_mode: str = 'reflect_101'):
        self.keys = list(keys)
        self.min_size = (min_size, min_size) if isinstance(min_size,
                                                           int) else tuple(
                                                               min_size)
        if border_mode not in self._BORDERS:
            raise ValueError(f'border_mode must be one of '
                             f'{sorted(self._BORDERS)}, got {border_mode!r}')
        self.border_mode = border_mode

    def transform(self, results: Dict) -> Dict:
        """Pad ``results[key]`` for every key."""
        min_h, min_w = self.min_size

        def pad(img: Image) -> Image:
            h, w = img.shape[:2]
            ph, pw = max(0, min_h - h), max(0, min_w - w)
            if ph == 0 and pw == 0:
                return img
            out = cv2.copyMakeBorder(img, 0, ph, 0, pw,
                                     self._BORDERS[self.border_mode])
            return _keep_channel_dim(out, img)

        for key in self.keys:
            results[key] = _apply(results[key], pad)
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(keys={self.keys}, ' \
               f'min_size={self.min_size}, border_mode={self.border_mode!r})'


@TRANSFORMS.register_module()
class GenerateRealESRGANKernels(BaseTransform):
    """Per-sample blur kernels for the batched (device-side) degradation.

    The official ``RealESRGANDataset`` only loads the GT and draws the three kernels of a sample
    (``kernel1``, ``kernel2``, ``sinc_kernel``), zero-padded to 21x21; the model applies them on the
    GPU. This transform does the same with the sampling of :class:`RealESRGANRandomBlur` (same
    ``params``): with probability ``1 - params['prob']`` the kernel is the identity (a centred
    pulse), as the official final sinc kernel (``final_sinc_prob``). The second blur's own
    probability is drawn per *batch* by
    :class:`~diffir_mm.models.data_preprocessors.RealESRGANDegradationPreprocessor`, so its entry
    here should have no ``prob``.

    Args:
        kernels: Output key -> :class:`RealESRGANRandomBlur` params.
        pad_to: Side of the returned ``float32`` kernels.
    """

    def __init__(self, kernels: Dict[str, dict], pad_to: int = 21):
        if pad_to % 2 == 0:
            raise ValueError(f'pad_to must be odd, got {pad_to}')
        self.blurs = {key: RealESRGANRandomBlur(params) for key, params in kernels.items()}
        self.pad_to = pad_to
        for key, blur in self.blurs.items():
            if max(blur.kernel_sizes) > pad_to:
                raise ValueError(f'{key}: kernel sizes {blur.kernel_sizes} exceed pad_to='
                                 f'{pad_to}')

    def _draw(self, blur: RealESRGANRandomBlur) -> np.ndarray:
        if _skip(blur.params):
            kernel = np.zeros((1, 1), np.float32)
            kernel[0, 0] = 1
        else:
            kernel = blur.get_kernel()
        pad = (self.pad_to - kernel.shape[0]) // 2
        return np.pad(kernel, pad).astype(np.float32)

    def transform(self, results: Dict) -> Dict:
        """Add one kernel per configured key."""
        for key, blur in self.blurs.items():
            results[key] = self._draw(blur)
        return results

    def __repr__(self) -> str:
        params = {key: blur.params for key, blur in self.blurs.items()}
        return f'{self.__class__.__name__}(kernels={params}, pad_to={self.pad_to})'
