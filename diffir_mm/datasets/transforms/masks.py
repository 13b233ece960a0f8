"""Inpainting masks of the LaMa recipe that DiffIR-inpainting trains and is evaluated with.

DiffIR's inpainting code is LaMa's (advimman/lama); its masks come from
``saicinpainting/training/data/masks.py`` (docs/advanced_guides/method.md §4.5 and §5):

* **training** (``configs/training/data/abl-04-256-mh-dist[-celeba].yaml``): LaMa's
  ``MixedMaskGenerator`` with irregular strokes (``max_angle 4, max_len 200, max_width 100``,
  1-5 strokes) and boxes (``margin 10``, sides 30-150, 1-4 boxes), probability 1 each
  (renormalised to 50/50), drawn anew for every sample;
* **evaluation** (``configs/data_gen/random_{thin,medium,thick}_{256,512}.yaml``): the same
  generator with the protocol's parameters; LaMa draws ``variants_n = 5`` masks per image,
  drops those covering more than ``max_tamper_area = 0.5`` of the image and keeps one at random
  (on the whole resized image, then cut to a square with the image: :mod:`.lama_eval`, the
  Places protocol; on square images such as CelebA-HQ 256 the square is the image).

MMagic's ``LoadMask`` has other generators (DeepFill's free-form strokes, square boxes), so the
LaMa ones are here. The two transforms write ``results['mask']``, an ``(H, W, 1)`` float32
array with 1 = hole, like ``LoadMask``; MMagic's ``GetMaskedImage(zero_value=0)`` then builds the
DiffIR input image ``img * (1 - mask)``.

* :class:`GenerateInpaintingMask` draws a mask at the image size: from NumPy's global generator
  (``seed=None``, training: mmengine seeds it per worker and the project's random-state hook saves
  it) or, with an integer ``seed``, from a generator seeded by ``(seed, file name)``, so that every
  run, order and number of workers evaluates an image on the same mask.
* :class:`LoadInpaintingMask` reads a mask file (a folder of LaMa-style ``<name>_mask000.png``
  files, or ``results['mask_path']``) and refuses a missing, unreadable, wrongly sized or
  non-binary one with a one-line error; ``threshold`` turns a grey-level mask into a binary one.

Sampling facts reproduced from LaMa's generator (not visible in its YAML files):

* without a ramp, ``RandomIrregularMaskGenerator`` passes ``max_times + 1`` to the stroke
  sampler, which draws ``randint(min_times, max_times + 2)``: a YAML ``max_times: 5`` gives 1-6
  strokes. The presets below store the effective, inclusive counts (``strokes=(1, 6)``);
* each stroke has 1-5 segments; a segment turns by ``0.01 + randint(max_angle)`` radians
  (mirrored as ``2*pi - angle`` on every other stroke), is ``10 + randint(max_len)`` long and
  ``5 + randint(max_width)`` wide (``cv2.line``), and ends clipped to the image;
* box sides are drawn in ``[bbox_min_size, bbox_max_size]`` (inclusive) and capped so that a box
  leaves ``margin`` pixels to every border; the box count is ``randint(min_times, max_times + 1)``.
"""
from __future__ import annotations

import math
import os
import os.path as osp
import zlib
from typing import Dict, Mapping, Optional, Sequence, Tuple, Union

import cv2
import numpy as np
from mmcv.transforms import BaseTransform
from mmagic.registry import TRANSFORMS

__all__ = [
    'GenerateInpaintingMask', 'LoadInpaintingMask', 'MASK_PRESETS', 'MixedMaskSampler',
    'draw_irregular_strokes', 'draw_random_boxes', 'seeded_rng', 'sample_name', 'sample_path'
]

Shape = Tuple[int, int]


def draw_irregular_strokes(shape: Shape, rng: np.random.RandomState, max_angle: int = 4,
                           max_len: int = 60, max_width: int = 20,
                           strokes: Tuple[int, int] = (0, 10)) -> np.ndarray:
    """LaMa's irregular mask: polygonal chains drawn with a thick brush.

    Args:
        shape: ``(height, width)``.
        rng: Source of random numbers (``np.random.RandomState`` API; the ``np.random`` module
            itself works too).
        max_angle: Turning angles are ``0.01 + randint(max_angle)`` radians.
        max_len: Segment lengths are ``10 + randint(max_len)`` pixels.
        max_width: Brush widths are ``5 + randint(max_width)`` pixels.
        strokes: Inclusive range of the number of strokes.

    Returns:
        ``(height, width)`` float32 array, 1 = hole.
    """
    height, width = shape
    mask = np.zeros((height, width), np.float32)
    for stroke in range(rng.randint(strokes[0], strokes[1] + 1)):
        x, y = rng.randint(width), rng.randint(height)
        for _ in range(1 + rng.randint(5)):
            angle = 0.01 + rng.randint(max_angle)
            if stroke % 2 == 0:
                angle = 2 * math.pi - angle
            length = 10 + rng.randint(max_len)
            brush = 5 + rng.randint(max_width)
            end_x = min(max(int(x + length * math.sin(angle)), 0), width)
            end_y = min(max(int(y + length * math.cos(angle)), 0), height)
            cv2.line(mask, (x, y), (end_x, end_y), 1.0, brush)
            x, y = end_x, end_y
    return mask


def draw_random_boxes(shape: Shape, rng: np.random.RandomState, margin: int = 10,
                      bbox_min_size: int = 30, bbox_max_size: int = 100,
                      boxes: Tuple[int, int] = (0, 3)) -> np.ndarray:
    """LaMa's box mask: axis-aligned rectangles at least ``margin`` pixels from every border.

    Args:
        shape: ``(height, width)``.
        rng: Source of random numbers (``np.random.RandomState`` API).
        margin: Distance of every box to the image border.
        bbox_min_size: Smallest box side.
        bbox_max_size: Largest box side (inclusive; capped to fit inside the margins).
        boxes: Inclusive range of the number of boxes.

    Returns:
        ``(height, width)`` float32 array, 1 = hole.
    """
    height, width = shape
    largest = min(bbox_max_size, height - 2 * margin - 1, width - 2 * margin - 1)
    if largest < bbox_min_size:
        raise ValueError(f'a {height}x{width} image has no room for boxes of side '
                         f'>= {bbox_min_size} with margin {margin}')
    mask = np.zeros((height, width), np.float32)
    for _ in range(rng.randint(boxes[0], boxes[1] + 1)):
        box_w = rng.randint(bbox_min_size, largest + 1)
        box_h = rng.randint(bbox_min_size, largest + 1)
        left = rng.randint(margin, width - margin - box_w + 1)
        top = rng.randint(margin, height - margin - box_h + 1)
        mask[top:top + box_h, left:left + box_w] = 1
    return mask


#: Mask generators of the protocol. ``irregular`` / ``box``: keyword arguments of
#: :func:`draw_irregular_strokes` / :func:`draw_random_boxes` (effective, inclusive counts, see
#: the module docstring) with the kind's probability ``p``; ``variants`` / ``max_coverage``: how
#: many masks an evaluation image gets to choose from and the largest hole fraction it accepts.
MASK_PRESETS: Dict[str, dict] = {
    # abl-04-256-mh-dist(-celeba).yaml (training; every call draws one mask, no filter)
    'train': dict(
        irregular=dict(p=1, max_angle=4, max_len=200, max_width=100, strokes=(1, 6)),
        box=dict(p=1, margin=10, bbox_min_size=30, bbox_max_size=150, boxes=(1, 4))),
    # configs/data_gen/random_*.yaml (evaluation)
    'thin_256': dict(
        irregular=dict(p=1, max_angle=4, max_len=40, max_width=10, strokes=(4, 51)),
        variants=5, max_coverage=0.5),
    'medium_256': dict(
        irregular=dict(p=1, max_angle=4, max_len=100, max_width=50, strokes=(4, 6)),
        box=dict(p=0.3, margin=0, bbox_min_size=10, bbox_max_size=50, boxes=(1, 5)),
        variants=5, max_coverage=0.5),
    'thick_256': dict(
        irregular=dict(p=1, max_angle=4, max_len=200, max_width=100, strokes=(1, 6)),
        box=dict(p=0.3, margin=10, bbox_min_size=30, bbox_max_size=150, boxes=(1, 3)),
        variants=5, max_coverage=0.5),
    'thin_512': dict(
        irregular=dict(p=1, max_angle=4, max_len=100, max_width=20, strokes=(4, 71)),
        variants=5, max_coverage=0.5),
    'medium_512': dict(
        irregular=dict(p=1, max_angle=4, max_len=200, max_width=100, strokes=(4, 11)),
        box=dict(p=0.3, margin=0, bbox_min_size=30, bbox_max_size=150, boxes=(1, 5)),
        variants=5, max_coverage=0.5),
    'thick_512': dict(
        irregular=dict(p=1, max_angle=4, max_len=450, max_width=250, strokes=(1, 6)),
        box=dict(p=0.3, margin=10, bbox_min_size=30, bbox_max_size=300, boxes=(1, 4)),
        variants=5, max_coverage=0.5),
}

_DRAWERS = {'irregular': draw_irregular_strokes, 'box': draw_random_boxes}


class MixedMaskSampler:
    """LaMa's ``MixedMaskGenerator`` restricted to strokes and boxes, plus the evaluation filter.

    Args:
        irregular: Stroke parameters with their probability ``p`` (None: no strokes).
        box: Box parameters with their probability ``p`` (None: no boxes).
        variants: Masks drawn per call when filtering; one of those that pass is kept.
        max_coverage: Largest accepted hole fraction (None: no filter, one draw per call).
    """

    def __init__(self, irregular: Optional[Mapping] = None, box: Optional[Mapping] = None,
                 variants: int = 1, max_coverage: Optional[float] = None) -> None:
        self.kinds = []
        probabilities = []
        for name, params in (('irregular', irregular), ('box', box)):
            params = dict(params or {})
            p = float(params.pop('p', 0))
            if p > 0:
                self.kinds.append((_DRAWERS[name], params))
                probabilities.append(p)
        if not self.kinds:
            raise ValueError('a mask sampler needs irregular and/or box parameters with p > 0')
        self.probabilities = np.asarray(probabilities, np.float64) / sum(probabilities)
        if variants < 1:
            raise ValueError(f'variants must be >= 1, got {variants}')
        if max_coverage is not None and not 0 < max_coverage <= 1:
            raise ValueError(f'max_coverage must be in (0, 1], got {max_coverage}')
        self.variants = int(variants)
        self.max_coverage = max_coverage

    def draw_one(self, shape: Shape, rng: np.random.RandomState) -> np.ndarray:
        """One mask of a randomly chosen kind (no filter).

        Args:
            shape: ``(height, width)``.
            rng: Source of random numbers.

        Returns:
            ``(height, width)`` float32 array, 1 = hole.
        """
        if len(self.kinds) == 1:
            kind = 0
        else:
            kind = rng.choice(len(self.kinds), p=self.probabilities)
        draw, params = self.kinds[kind]
        return draw(shape, rng, **params)

    def __call__(self, shape: Shape, rng: np.random.RandomState,
                 max_rounds: int = 100) -> np.ndarray:
        """A mask; with ``max_coverage``, one of ``variants`` draws whose hole fraction is in
        ``(0, max_coverage]``.

        LaMa leaves an evaluation image out when none of its variants passes; here another round
        of variants is drawn instead, so every image keeps a mask (the CelebA-HQ configs;
        :class:`~.lama_eval.LamaEvalRule` leaves the image out, as LaMa).

        Args:
            shape: ``(height, width)``.
            rng: Source of random numbers.
            max_rounds: Rounds of ``variants`` draws before giving up.

        Returns:
            ``(height, width)`` float32 array, 1 = hole.
        """
        if self.max_coverage is None:
            return self.draw_one(shape, rng)
        for _ in range(max_rounds):
            candidates = [self.draw_one(shape, rng) for _ in range(self.variants)]
            kept = [m for m in candidates if 0 < m.mean() <= self.max_coverage]
            if kept:
                return kept[rng.randint(len(kept))]
        raise RuntimeError(f'no mask with coverage in (0, {self.max_coverage}] after '
                           f'{max_rounds * self.variants} draws at size {shape}')


def seeded_rng(seed: int, name: str, *streams: int) -> np.random.RandomState:
    """A generator that depends only on ``seed``, a file name and optional stream numbers.

    Args:
        seed: The protocol's seed (e.g. a config's ``eval_mask_seed``).
        name: File name (no folder) of the image.
        *streams: Further integers giving independent streams for one image (e.g. the mask
            variant).

    Returns:
        A ``np.random.RandomState`` (the API of LaMa's generators) on its own MT19937 state.
    """
    key = [seed, zlib.crc32(name.encode('utf-8')), *streams]
    return np.random.RandomState(np.random.MT19937(np.random.SeedSequence(key)))


def sample_path(results: Mapping, keys: Sequence[str]) -> str:
    """Path of the file that identifies a sample (for per-sample seeding and mask lookup).

    Args:
        results: The transform's ``results`` dict (or a dataset's data info).
        keys: Path fields to try in order, e.g. ``('gt_path', 'img_path')``.

    Returns:
        The first path found.
    """
    for key in keys:
        path = results.get(key)
        if isinstance(path, str) and path:
            return path
    raise KeyError(f'no file path in the sample (looked for {", ".join(keys)}); '
                   'a deterministic mask needs to know which image it is for')


def sample_name(results: Mapping, keys: Sequence[str]) -> str:
    """File name (no folder) of :func:`sample_path`."""
    return osp.basename(sample_path(results, keys))


def _image_shape(results: Mapping, key: str) -> Shape:
    if key not in results:
        raise KeyError(f'the inpainting mask needs the image {key!r} loaded first '
                       f'(available keys: {sorted(results)})')
    return tuple(results[key].shape[:2])


@TRANSFORMS.register_module()
class GenerateInpaintingMask(BaseTransform):
    """Draw a LaMa mask at the image size into ``results[mask_key]`` (``(H, W, 1)``, 1 = hole).

    Args:
        preset: A :data:`MASK_PRESETS` name (``'train'``, ``'thin_256'``, ``'medium_256'``,
            ``'thick_256'``, ``'thin_512'``, ``'medium_512'``, ``'thick_512'``) or a dict of
            :class:`MixedMaskSampler` arguments.
        seed: None: NumPy's global generator (training). An int: the mask of an image depends
            only on ``seed`` and its file name (evaluation).
        img_key: Image whose ``(H, W)`` the mask takes.
        mask_key: Output key.
        path_keys: Fields whose file name identifies the sample when ``seed`` is set.
    """

    def __init__(self, preset: Union[str, Mapping] = 'train', seed: Optional[int] = None,
                 img_key: str = 'gt', mask_key: str = 'mask',
                 path_keys: Sequence[str] = ('gt_path', 'img_path')) -> None:
        if isinstance(preset, str):
            if preset not in MASK_PRESETS:
                raise ValueError(f'unknown mask preset {preset!r}; use one of '
                                 f'{", ".join(MASK_PRESETS)} or a dict')
            params = MASK_PRESETS[preset]
        else:
            params = dict(preset)
        self.preset = preset
        self.sampler = MixedMaskSampler(**params)
        self.seed = seed
        self.img_key = img_key
        self.mask_key = mask_key
        self.path_keys = tuple(path_keys)

    def rng_for(self, results: Mapping):
        """The generator for one sample: global (``seed=None``) or seeded by (seed, file name).

        Args:
            results: The sample.

        Returns:
            The ``np.random`` module (global state) or a seeded ``np.random.RandomState``.
        """
        if self.seed is None:
            return np.random
        return seeded_rng(self.seed, sample_name(results, self.path_keys))

    def transform(self, results: Dict) -> Dict:
        """Add the mask.

        Args:
            results: Needs ``results[img_key]`` (and a path when ``seed`` is set).

        Returns:
            ``results`` with ``results[mask_key]``.
        """
        shape = _image_shape(results, self.img_key)
        results[self.mask_key] = self.sampler(shape, self.rng_for(results))[..., None]
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(preset={self.preset!r}, seed={self.seed!r})'


@TRANSFORMS.register_module()
class LoadInpaintingMask(BaseTransform):
    """Read a mask file into ``results[mask_key]`` (``(H, W, 1)`` float32, 1 = hole).

    The file is ``results['mask_path']`` when the dataset provides it, else
    ``mask_dir/filename_tmpl.format(stem=<image file stem>)``; the default template is the
    ``<name>_mask000.png`` of LaMa's generated evaluation sets. Masks are read as grey levels.

    A binary mask (values ``{0, 1}`` or ``{0, 255}``) is used as is. Any other mask is refused
    unless ``threshold`` is set; then every pixel ``> threshold`` is a hole (``threshold=0`` is
    the ``mask > 0`` of LaMa's ``bin/predict.py``; 127 suits anti-aliased or JPEG masks).
    MMagic's ``LoadMask(mask_mode='file')`` always applies ``> 0`` and checks neither the size nor
    the file, hence this transform.

    Args:
        mask_dir: Folder of the masks (None: ``results['mask_path']`` is required).
        filename_tmpl: Mask file name, formatted with ``stem`` (the image name without extension).
        threshold: None: refuse non-binary masks. A number: binarise with ``> threshold``.
        img_key: Image the mask must match in height and width.
        mask_key: Output key.
        path_keys: Fields holding the image path, for the mask file name.
    """

    def __init__(self, mask_dir: Optional[str] = None, filename_tmpl: str = '{stem}_mask000.png',
                 threshold: Optional[float] = None, img_key: str = 'gt', mask_key: str = 'mask',
                 path_keys: Sequence[str] = ('gt_path', 'img_path')) -> None:
        self.mask_dir = mask_dir
        self.filename_tmpl = filename_tmpl
        self.threshold = threshold
        self.img_key = img_key
        self.mask_key = mask_key
        self.path_keys = tuple(path_keys)

    def mask_path(self, results: Mapping) -> str:
        """Where the mask of this sample is.

        Args:
            results: The sample.

        Returns:
            The mask file path.
        """
        if results.get('mask_path'):
            return results['mask_path']
        if self.mask_dir is None:
            raise KeyError('no mask given: the sample has no mask_path and LoadInpaintingMask '
                           'has no mask_dir')
        stem = osp.splitext(sample_name(results, self.path_keys))[0]
        return osp.join(self.mask_dir, self.filename_tmpl.format(stem=stem))

    def binarize(self, mask: np.ndarray, path: str) -> np.ndarray:
        """0/1 float32 mask from grey levels (see the class docstring).

        Args:
            mask: ``(H, W)`` grey-level array.
            path: File name for the error message.

        Returns:
            ``(H, W)`` float32 array, 1 = hole.
        """
        if self.threshold is not None:
            return (mask > self.threshold).astype(np.float32)
        values = np.unique(mask)
        for high in (1, 255):
            if np.isin(values, (0, high)).all():
                return (mask == high).astype(np.float32)
        raise ValueError(f'mask {path} is not binary ({values.size} grey levels in '
                         f'[{values.min()}, {values.max()}]); set threshold (0 as LaMa\'s '
                         'predict.py: every non-zero pixel is a hole)')

    def transform(self, results: Dict) -> Dict:
        """Read, check and add the mask.

        Args:
            results: Needs ``results[img_key]`` and a mask path (see the class docstring).

        Returns:
            ``results`` with ``results[mask_key]`` and ``results['mask_path']``.
        """
        shape = _image_shape(results, self.img_key)
        path = self.mask_path(results)
        if not os.path.isfile(path):
            raise FileNotFoundError(f'mask not found: {path}')
        mask = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
        if mask is None:
            raise ValueError(f'cannot read mask {path} (not an image file)')
        if mask.shape != shape:
            raise ValueError(f'mask {path} is {mask.shape[0]}x{mask.shape[1]} but its image is '
                             f'{shape[0]}x{shape[1]}')
        results[self.mask_key] = self.binarize(mask, path)[..., None]
        results['mask_path'] = path
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(mask_dir={self.mask_dir!r}, '
                f'filename_tmpl={self.filename_tmpl!r}, threshold={self.threshold!r})')
