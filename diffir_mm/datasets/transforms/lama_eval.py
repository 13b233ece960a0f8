"""Places evaluation samples as LaMa makes them: resize, mask the whole image, crop a square.

LaMa's ``bin/gen_mask_dataset.py`` builds the Places evaluation sets
(``configs/data_gen/random_{thin,medium,thick}_512.yaml``) image by image:

1. the image is resized (PIL, bicubic) so that its short side is ``out_min_size`` (512): the
   factor is ``512 / min(w, h)`` and each side is rounded to the nearest integer (NumPy's
   rounding); smaller images are enlarged (``handle_small_mode: upscale``);
2. ``variants_n = 5`` masks are drawn at the size of the **whole** resized image;
3. each mask gets a square crop (side = the short side) that overlaps it
   (``propose_random_square_crop``, ``crop_min_overlap: 1``): along the long side the crop
   starts at a uniform integer in ``[max(0, min(L - S - 1, last - S)),
   max(low + 1, min(L - S, last)))``, where ``last`` is the last row / column holding a hole,
   ``L`` the long and ``S`` the short side (a square image is not moved);
4. the cropped masks covering more than ``max_tamper_area = 0.5`` are discarded and one of the
   others is kept at random; an image with no such mask is **left out** of the set.

Drawing on the whole image and cropping afterwards gives sparser holes than drawing on a
centre square: the strokes spread over the larger picture.

:class:`LamaEvalRule` decides an image's sample from its file name and size;
:class:`LamaEvalSample` is the pipeline step (resize, mask, crop). The variants of an image are
drawn one after another, each from its own generator seeded by ``(seed, file name, variant)``,
and the first acceptable one is kept; the image is left out when the ``variants`` first ones
all fail. Keeping the first acceptable of at most five independent draws has the same
distribution as LaMa's random choice among the acceptable ones of five draws (either is one
draw conditioned on being acceptable, and both fail exactly when all five fail), for fewer
draws, and the sample of an image depends only on the seed and its file name: the same in every
run, order and number of workers. Images left out have no sample: datasets drop them before
the pipeline runs (:class:`~diffir_mm.datasets.LamaEvalDataset`); meeting one in the pipeline
is an error.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
from mmagic.registry import TRANSFORMS
from mmcv.transforms import BaseTransform
from PIL import Image

from .masks import MASK_PRESETS, MixedMaskSampler, sample_name, seeded_rng

__all__ = ['LamaEvalSample', 'LamaEvalRule', 'EvalCrop', 'resized_size', 'resize_short_side',
           'square_crop_overlapping']

Shape = Tuple[int, int]


def resized_size(height: int, width: int, short_side: int) -> Shape:
    """``(height, width)`` after LaMa's resize to a given short side (NumPy rounding).

    Args:
        height: Source height.
        width: Source width.
        short_side: Target length of the shorter side.

    Returns:
        The resized ``(height, width)``.
    """
    factor = short_side / min(height, width)
    new_h, new_w = np.round(np.array([height, width]) * factor).astype(np.int64)
    return int(new_h), int(new_w)


def resize_short_side(image: np.ndarray, short_side: int) -> np.ndarray:
    """Resize an ``(H, W[, C])`` uint8 image as LaMa does (PIL bicubic, see :func:`resized_size`).

    Args:
        image: The image.
        short_side: Target length of the shorter side.

    Returns:
        The resized image (a copy when the size does not change).
    """
    height, width = resized_size(*image.shape[:2], short_side)
    resized = Image.fromarray(image).resize((width, height), resample=Image.BICUBIC)
    return np.asarray(resized)


def square_crop_overlapping(mask: np.ndarray, rng: np.random.RandomState) -> Tuple[int, int, int]:
    """LaMa's square crop of a mask's image that overlaps the mask (``crop_min_overlap = 1``).

    Args:
        mask: ``(H, W)`` mask of the whole image, holes > 0.5; it must hold a hole.
        rng: Source of random numbers (one ``randint`` call).

    Returns:
        ``(top, left, side)`` of the crop.
    """
    height, width = mask.shape
    side = min(height, width)
    along_x = height < width  # the crop slides along the long side
    holes = (mask > 0.5).any(axis=0 if along_x else 1)
    last = int(np.flatnonzero(holes)[-1])
    length = width if along_x else height
    low = max(0, min(length - side - 1, last - side))
    high = max(low + 1, min(length - side, last))
    start = int(rng.randint(low, high))
    return (0, start, side) if along_x else (start, 0, side)


@dataclass(frozen=True)
class EvalCrop:
    """The evaluation sample of one image: a square window and the mask inside it.

    Attributes:
        mask: ``(side, side)`` float32 mask, 1 = hole.
        top: First row of the window in the resized image.
        left: First column of the window in the resized image.
        variant: Which of the image's mask variants it is (0-based).
    """

    mask: np.ndarray
    top: int
    left: int
    variant: int

    @property
    def side(self) -> int:
        """Side of the square window."""
        return self.mask.shape[0]

    def crop(self, image: np.ndarray) -> np.ndarray:
        """The window of an image of the resized size (a contiguous copy)."""
        window = image[self.top:self.top + self.side, self.left:self.left + self.side]
        return np.ascontiguousarray(window)


class LamaEvalRule:
    """LaMa's evaluation sample for an image: which mask and crop, or none (image left out).

    Args:
        preset: A :data:`~diffir_mm.datasets.transforms.masks.MASK_PRESETS` evaluation name
            (e.g. ``'thin_512'``) or a dict of
            :class:`~diffir_mm.datasets.transforms.masks.MixedMaskSampler` arguments with
            ``variants`` and ``max_coverage``.
        seed: The protocol's seed; with the file name it fixes the sample.
        short_side: Short side of the resized image, which is the side of the square crop.
    """

    def __init__(self, preset: Union[str, Mapping], seed: int, short_side: int = 512) -> None:
        if isinstance(preset, str):
            if preset not in MASK_PRESETS or preset == 'train':
                names = ', '.join(n for n in MASK_PRESETS if n != 'train')
                raise ValueError(f'unknown evaluation mask preset {preset!r}; use one of {names}')
            params = MASK_PRESETS[preset]
        else:
            params = dict(preset)
        self.preset = preset
        self.sampler = MixedMaskSampler(**params)
        if self.sampler.max_coverage is None:
            raise ValueError('an evaluation mask preset needs max_coverage (LaMa\'s '
                             'max_tamper_area)')
        if short_side < 1:
            raise ValueError(f'short_side must be >= 1, got {short_side}')
        self.seed = int(seed)
        self.short_side = int(short_side)

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(preset={self.preset!r}, seed={self.seed}, '
                f'short_side={self.short_side})')

    def resized_shape(self, height: int, width: int) -> Shape:
        """Size of a ``height x width`` source after the resize (step 1)."""
        return resized_size(height, width, self.short_side)

    def resize(self, image: np.ndarray) -> np.ndarray:
        """An ``(H, W[, C])`` uint8 source image after the resize (step 1)."""
        return resize_short_side(image, self.short_side)

    def sample(self, name: str, shape: Shape) -> Optional[EvalCrop]:
        """The mask and window of an image, or None when LaMa leaves the image out.

        Args:
            name: File name (no folder) of the image: with the seed it fixes the result.
            shape: ``(height, width)`` of the **resized** image.

        Returns:
            The :class:`EvalCrop`, or None when every variant covers more than
            ``max_coverage`` of its crop.
        """
        for variant in range(self.sampler.variants):
            rng = seeded_rng(self.seed, name, variant)
            mask = self.sampler.draw_one(shape, rng)
            if not mask.any():  # LaMa's crop fails on it and skips the image (never seen)
                return None
            top, left, side = square_crop_overlapping(mask, rng)
            window = mask[top:top + side, left:left + side]
            if window.mean() <= self.sampler.max_coverage:
                return EvalCrop(np.ascontiguousarray(window), top, left, variant)
        return None

    def sample_source(self, name: str, height: int, width: int) -> Optional[EvalCrop]:
        """:meth:`sample` for a source image of ``height x width`` (before the resize)."""
        return self.sample(name, self.resized_shape(height, width))


@TRANSFORMS.register_module()
class LamaEvalSample(BaseTransform):
    """Resize, mask the whole image, crop image and mask to LaMa's square (see module docstring).

    Args:
        preset: Evaluation mask preset (``'thin_512'``, ``'thick_512'``, ...) or sampler dict.
        seed: The protocol's seed; with the file name it fixes the mask and the crop.
        short_side: Short side after the resize (LaMa's ``out_min_size``), the crop's side.
        keys: Images resized and cropped together (the first one gives the size).
        mask_key: Output key of the ``(side, side, 1)`` float32 mask, 1 = hole.
        path_keys: Fields whose file name identifies the sample.
    """

    def __init__(self, preset: Union[str, Mapping], seed: int, short_side: int = 512,
                 keys: Sequence[str] = ('gt',), mask_key: str = 'mask',
                 path_keys: Sequence[str] = ('gt_path', 'img_path')) -> None:
        self.rule = LamaEvalRule(preset, seed, short_side)
        self.keys = tuple(keys)
        self.mask_key = mask_key
        self.path_keys = tuple(path_keys)

    def transform(self, results: Dict) -> Dict:
        """Replace ``results[keys]`` by their crops and add the mask.

        Args:
            results: Needs the images of ``keys`` and a path.

        Returns:
            ``results`` with the cropped images, ``results[mask_key]`` and, as MMagic's
            ``Crop``, ``<key>_crop_bbox`` (``[left, top, side, side]`` in the resized image)
            and ``crop_size``.
        """
        missing = [key for key in self.keys if key not in results]
        if missing:
            raise KeyError(f'LamaEvalSample needs the image {missing[0]!r} loaded first '
                           f'(available keys: {sorted(results)})')
        name = sample_name(results, self.path_keys)
        height, width = results[self.keys[0]].shape[:2]
        sample = self.rule.sample_source(name, height, width)
        if sample is None:
            raise ValueError(f'{name}: every mask variant covers more than '
                             f'{self.rule.sampler.max_coverage} of its crop, so LaMa leaves this '
                             'image out; evaluate with LamaEvalDataset, which drops it')
        for key in self.keys:
            image = results[key]
            if image.shape[:2] != (height, width):
                raise ValueError(f'{key!r} is {image.shape[0]}x{image.shape[1]} but '
                                 f'{self.keys[0]!r} is {height}x{width}')
            results[key] = sample.crop(self.rule.resize(image))
            results[f'{key}_crop_bbox'] = [sample.left, sample.top, sample.side, sample.side]
        results['crop_size'] = (sample.side, sample.side)
        results[self.mask_key] = sample.mask[..., None]
        return results

    def __repr__(self) -> str:
        rule = self.rule
        return (f'{type(self).__name__}(preset={rule.preset!r}, seed={rule.seed}, '
                f'short_side={rule.short_side})')
