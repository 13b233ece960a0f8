"""Batched PyTorch degradation operators of the official Real-ESRGAN second-order pipeline.

DiffIR-RealSR synthesises its training LQ images on the GPU, a batch at a time (DiffIR method
notes, §2.3; BasicSR's ``filter2D``, ``DiffJPEG``, ``random_add_*_noise_pt``, ``USMSharp``).
These are our own torch implementations of those operators, written from the documented
behaviour; :class:`~diffir_mm.models.data_preprocessors.RealESRGANDegradationPreprocessor`
chains them. Every function takes ``(B, C, H, W)`` float images in ``[0, 1]`` (RGB), works on
any device and draws its random numbers from an explicit ``torch.Generator`` on that device,
so a run is reproducible from a seed.

Facts reproduced on purpose (they change the training distribution):

* :func:`filter2d` pads with ``reflect`` (= OpenCV's ``BORDER_REFLECT_101``), one kernel per
  sample.
* :class:`DiffJPEG` takes a *float* quality per sample (the official ``jpeg_range`` [30, 95] is
  drawn with ``uniform_``), scales the standard quantisation tables by the libjpeg quality
  factor without rounding them, uses 4:2:0 chroma (2x2 average, nearest upsampling), zero-pads
  to a multiple of 16 and -- as BasicSR's DiffJPEG -- indexes the tables transposed relative
  to libjpeg's natural order (``table[u, v]`` for vertical frequency ``u``).
* Gaussian noise: one sigma and one gray/colour flag per sample; the gray noise map of the
  official ``generate_gaussian_noise_pt`` is a single ``(H, W)`` map shared by the batch
  (scaled per sample), reproduced with ``share_gray_map=True``.
* Poisson noise: per sample ``vals = 2 ** ceil(log2(#distinct 8-bit values))`` of the rounded
  image (of its luma for gray noise, ``0.2989 R + 0.587 G + 0.114 B``).
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ['filter2d', 'gaussian_kernel1d', 'usm_sharpen', 'resize', 'add_gaussian_noise',
           'add_poisson_noise', 'quality_to_factor', 'DiffJPEG', 'quantize8']

RESIZE_MODES = ('area', 'bilinear', 'bicubic', 'nearest')
LUMA_WEIGHTS = (0.2989, 0.587, 0.114)  # torchvision rgb_to_grayscale, as the official Poisson


def filter2d(img: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Filter every sample with its own odd ``k x k`` kernel (reflect borders, all channels).

    Args:
        img: ``(B, C, H, W)`` images.
        kernel: ``(B, k, k)`` kernels, or ``(k, k)`` / ``(1, k, k)`` for one shared kernel.

    Returns:
        The filtered ``(B, C, H, W)`` images (correlation, as ``cv2.filter2D``).
    """
    b, c, h, w = img.shape
    k = kernel.shape[-1]
    if k % 2 == 0 or kernel.shape[-2] != k:
        raise ValueError(f'filter2d needs square odd kernels, got {tuple(kernel.shape)}')
    kernel = kernel.reshape(-1, k, k).to(img)
    padded = F.pad(img, (k // 2, ) * 4, mode='reflect')
    if kernel.shape[0] == 1:
        out = F.conv2d(padded.reshape(b * c, 1, *padded.shape[-2:]), kernel[:, None])
        return out.reshape(b, c, h, w)
    if kernel.shape[0] != b:
        raise ValueError(f'{kernel.shape[0]} kernels for a batch of {b}')
    weight = kernel[:, None].repeat_interleave(c, dim=0)  # (B*C, 1, k, k)
    out = F.conv2d(padded.reshape(1, b * c, *padded.shape[-2:]), weight, groups=b * c)
    return out.reshape(b, c, h, w)


def gaussian_kernel1d(size: int, sigma: float = 0.) -> torch.Tensor:
    """1-D Gaussian kernel as ``cv2.getGaussianKernel`` (``sigma <= 0``: derived from size)."""
    if sigma <= 0:
        sigma = 0.3 * ((size - 1) * 0.5 - 1) + 0.8
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-x**2 / (2 * sigma**2))
    return (g / g.sum()).float()


def _reflect_filter_matrix(n: int, kernel1d: torch.Tensor) -> torch.Tensor:
    """``(n, n)`` matrix of a 1-D correlation with reflect-101 borders folded in."""
    r = kernel1d.numel() // 2
    if r >= n:
        raise ValueError(f'a {kernel1d.numel()}-tap filter needs at least {r + 1} pixels, '
                         f'got {n}')
    src = torch.arange(n)[:, None] + torch.arange(-r, r + 1)[None, :]
    src = src.abs()
    src = torch.where(src > n - 1, 2 * (n - 1) - src, src)
    matrix = torch.zeros(n, n, dtype=torch.float64)
    matrix.scatter_add_(1, src, kernel1d.double().expand(n, -1).contiguous())
    return matrix.float()


def _separable_blur(img: torch.Tensor, kernel1d: torch.Tensor) -> torch.Tensor:
    """Separable correlation as two banded matrix products (fast on CPU and GPU)."""
    h, w = img.shape[-2:]
    rows = _reflect_filter_matrix(h, kernel1d).to(img)
    cols = _reflect_filter_matrix(w, kernel1d).to(img) if w != h else rows
    return rows @ img @ cols.t()


def usm_sharpen(img: torch.Tensor, kernel_size: int = 51, sigma: float = 0., weight: float = 0.5,
                threshold: float = 10.) -> torch.Tensor:
    """Unsharp masking as BasicSR's ``USMSharp`` / MMagic's ``UnsharpMasking`` (defaults: the
    official 51 / 0 / 0.5 / 10), with the Gaussian applied separably.

    Args:
        img: ``(B, C, H, W)`` images in ``[0, 1]``.
        kernel_size, sigma: Gaussian blur (``sigma`` 0: OpenCV's default for the size).
        weight: Weight of the detail layer.
        threshold: Detail magnitude (0-255 units) above which the sharpened pixel is used.

    Returns:
        The sharpened images.
    """
    g = gaussian_kernel1d(kernel_size, sigma)
    residual = img - _separable_blur(img, g)
    mask = (residual.abs() * 255 > threshold).to(img)
    soft = _separable_blur(mask, g)
    sharp = (img + weight * residual).clamp(0, 1)
    return soft * sharp + (1 - soft) * img


def resize(img: torch.Tensor, size: Optional[Sequence[int]], mode: str,
           scale_factor: Optional[float] = None) -> torch.Tensor:
    """``F.interpolate`` with the official settings (no antialias, ``align_corners=False``).

    Args:
        img: ``(B, C, H, W)`` images.
        size: Output ``(h, w)``; ignored when ``scale_factor`` is given.
        mode: ``area``, ``bilinear``, ``bicubic`` or ``nearest``.
        scale_factor: Resize by this factor instead (output ``int(H * f)``; the sampling grid
            uses the factor itself, as the official first-order resize).
    """
    if mode not in RESIZE_MODES:
        raise ValueError(f'unknown resize mode {mode!r}; use one of {RESIZE_MODES}')
    kwargs = dict(align_corners=False) if mode in ('bilinear', 'bicubic') else {}
    if scale_factor is not None:
        if scale_factor == 1:
            return img
        return F.interpolate(img, scale_factor=float(scale_factor), mode=mode, **kwargs)
    size = (max(1, int(size[0])), max(1, int(size[1])))
    if tuple(img.shape[-2:]) == size:
        return img
    return F.interpolate(img, size=size, mode=mode, **kwargs)


def _per_sample(x: torch.Tensor) -> torch.Tensor:
    return x.reshape(-1, 1, 1, 1)


def add_gaussian_noise(img: torch.Tensor, sigma: torch.Tensor, gray: torch.Tensor,
                       generator: Optional[torch.Generator] = None,
                       share_gray_map: bool = True, clip: bool = True) -> torch.Tensor:
    """Add Gaussian noise with one sigma (0-255 units) and one gray flag per sample.

    Args:
        img: ``(B, C, H, W)`` images in ``[0, 1]``.
        sigma: ``(B,)`` noise std in 0-255 units.
        gray: ``(B,)`` bool; True: one noise map for all channels.
        generator: Random generator on ``img``'s device.
        share_gray_map: One ``(H, W)`` gray map for the whole batch, as the official code.
        clip: Clip the result to ``[0, 1]``.

    Returns:
        The noisy images (not rounded).
    """
    b, c, h, w = img.shape
    sigma = _per_sample(sigma.to(img)) / 255.
    noise = torch.randn(img.shape, generator=generator, device=img.device, dtype=img.dtype)
    # drawn whatever the flags: testing them on the host would wait for the device
    shape = (1, 1, h, w) if share_gray_map else (b, 1, h, w)
    gray_map = torch.randn(shape, generator=generator, device=img.device, dtype=img.dtype)
    g = _per_sample(gray.to(img))
    noise = noise * (1 - g) + gray_map * g
    out = img + noise * sigma
    return out.clamp(0, 1) if clip else out


def _poisson_residual(img: torch.Tensor, generator: Optional[torch.Generator]) -> torch.Tensor:
    """``Poisson(x * vals) / vals - x`` for the 8-bit-rounded ``x``, ``vals`` per sample."""
    b = img.shape[0]
    levels = (img * 255).round().clamp(0, 255)
    present = torch.zeros(b, 256, device=img.device, dtype=img.dtype)
    present.scatter_(1, levels.reshape(b, -1).long(), 1.)
    distinct = present.sum(1)
    vals = _per_sample(torch.exp2(torch.ceil(torch.log2(distinct))))
    x = levels / 255.
    return torch.poisson(x * vals, generator=generator) / vals - x


def add_poisson_noise(img: torch.Tensor, scale: torch.Tensor, gray: torch.Tensor,
                      generator: Optional[torch.Generator] = None,
                      clip: bool = True) -> torch.Tensor:
    """Add Poisson (shot) noise with one scale and one gray flag per sample.

    Args:
        img: ``(B, 3, H, W)`` RGB images in ``[0, 1]``.
        scale: ``(B,)`` noise scales.
        gray: ``(B,)`` bool; True: the noise of the luma image, shared by the channels.
        generator: Random generator on ``img``'s device.
        clip: Clip the result to ``[0, 1]``.

    Returns:
        The noisy images (not rounded).
    """
    noise = _poisson_residual(img, generator)
    # computed whatever the flags: testing them on the host would wait for the device
    weights = torch.tensor(LUMA_WEIGHTS, device=img.device, dtype=img.dtype)
    luma = (img * weights.view(1, 3, 1, 1)).sum(1, keepdim=True)
    g = _per_sample(gray.to(img))
    noise = noise * (1 - g) + _poisson_residual(luma, generator) * g
    out = img + noise * _per_sample(scale.to(img))
    return out.clamp(0, 1) if clip else out


def quantize8(img: torch.Tensor) -> torch.Tensor:
    """Round ``[0, 1]`` images to 8-bit levels (``clamp(round(x * 255)) / 255``)."""
    return (img * 255).round().clamp(0, 255) / 255


def quality_to_factor(quality: torch.Tensor) -> torch.Tensor:
    """libjpeg's quality scaling of the quantisation tables (float quality allowed)."""
    quality = quality.clamp(1, 100)
    return torch.where(quality < 50, 5000. / quality, 200. - 2 * quality) / 100.


# Standard JPEG tables (ITU T.81 Annex K), natural order: rows = vertical frequency.
_LUMA_TABLE = (
    (16, 11, 10, 16, 24, 40, 51, 61), (12, 12, 14, 19, 26, 58, 60, 55),
    (14, 13, 16, 24, 40, 57, 69, 56), (14, 17, 22, 29, 51, 87, 80, 62),
    (18, 22, 37, 56, 68, 109, 103, 77), (24, 35, 55, 64, 81, 104, 113, 92),
    (49, 64, 78, 87, 103, 121, 120, 101), (72, 92, 95, 98, 112, 100, 103, 99))
_CHROMA_CORNER = ((17, 18, 24, 47), (18, 21, 26, 66), (24, 26, 56, 99), (47, 66, 99, 99))
_RGB_TO_YCBCR = ((0.299, 0.587, 0.114), (-0.168736, -0.331264, 0.5), (0.5, -0.418688, -0.081312))
_YCBCR_TO_RGB = ((1., 0., 1.402), (1., -0.344136, -0.714136), (1., 1.772, 0.))


class DiffJPEG(nn.Module):
    """JPEG compression/decompression in torch with a float quality per sample.

    Baseline JPEG without entropy coding (which is lossless): RGB -> YCbCr, 4:2:0 chroma
    subsampling, 8x8 DCT, quantisation by the quality-scaled tables and the way back. Images
    are zero-padded to a multiple of 16 and cropped back.

    Args:
        official_table_layout: Index the tables transposed, as BasicSR's DiffJPEG (default,
            the official training distribution); False: libjpeg's orientation.
    """

    def __init__(self, official_table_layout: bool = True) -> None:
        super().__init__()
        luma = torch.tensor(_LUMA_TABLE, dtype=torch.float32)
        chroma = torch.full((8, 8), 99.)
        chroma[:4, :4] = torch.tensor(_CHROMA_CORNER, dtype=torch.float32)
        if official_table_layout:
            luma, chroma = luma.t().contiguous(), chroma.t().contiguous()
        freq = torch.arange(8, dtype=torch.float64)
        pos = torch.arange(8, dtype=torch.float64) + 0.5
        dct = torch.cos(math.pi / 8 * freq[:, None] * pos[None, :]) * math.sqrt(2 / 8)
        dct[0] /= math.sqrt(2)
        self.register_buffer('luma_table', luma, persistent=False)
        self.register_buffer('chroma_table', chroma, persistent=False)
        self.register_buffer('dct', dct.float(), persistent=False)  # orthonormal DCT-II
        self.register_buffer('rgb_to_ycbcr', torch.tensor(_RGB_TO_YCBCR), persistent=False)
        self.register_buffer('ycbcr_to_rgb', torch.tensor(_YCBCR_TO_RGB), persistent=False)

    def _code_plane(self, plane: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
        """Quantise and dequantise one ``(B, H, W)`` plane (0-255) in the DCT domain."""
        b, h, w = plane.shape
        blocks = (plane - 128).reshape(b, h // 8, 8, w // 8, 8).transpose(2, 3)
        coef = self.dct @ blocks @ self.dct.t()
        coef = torch.round(coef / table) * table
        blocks = self.dct.t() @ coef @ self.dct
        return blocks.transpose(2, 3).reshape(b, h, w) + 128

    def forward(self, img: torch.Tensor, quality: torch.Tensor) -> torch.Tensor:
        """Compress ``(B, 3, H, W)`` RGB images in ``[0, 1]`` with ``(B,)`` float qualities."""
        b, c, h, w = img.shape
        if c != 3:
            raise ValueError(f'DiffJPEG needs RGB images, got {c} channels')
        quality = torch.as_tensor(quality, dtype=img.dtype, device=img.device).reshape(-1)
        factor = quality_to_factor(quality.expand(b)).view(b, 1, 1, 1, 1)
        ph, pw = (16 - h % 16) % 16, (16 - w % 16) % 16
        x = F.pad(img, (0, pw, 0, ph)) * 255
        ycc = torch.einsum('ij,bjhw->bihw', self.rgb_to_ycbcr.to(x), x)
        y = ycc[:, 0]
        chroma = F.avg_pool2d(ycc[:, 1:] + 128, 2)
        y = self._code_plane(y, self.luma_table.to(x) * factor)
        cb = self._code_plane(chroma[:, 0], self.chroma_table.to(x) * factor)
        cr = self._code_plane(chroma[:, 1], self.chroma_table.to(x) * factor)
        chroma = torch.stack([cb, cr], 1).repeat_interleave(2, -2).repeat_interleave(2, -1)
        ycc = torch.cat([y[:, None], chroma - 128], 1)
        rgb = torch.einsum('ij,bjhw->bihw', self.ycbcr_to_rgb.to(x), ycc)
        return (rgb.clamp(0, 255) / 255)[..., :h, :w]
