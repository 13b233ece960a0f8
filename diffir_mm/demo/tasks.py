"""What each demo task does to the photos and which classical method DiffIR is compared with.

* ``deblur``: random linear motion blur; baseline: the blurred input itself.
* ``sr``: MATLAB bicubic /4 (as DF2K's LR); baseline: bicubic x4.
* ``inpaint``: LaMa masks (:class:`~diffir_mm.datasets.transforms.GenerateInpaintingMask`:
  drawn anew per training sample by the config's pipeline, one fixed mask per held-out photo,
  seeded by its name); baseline: OpenCV's ``cv2.inpaint`` (Telea's fast marching method).

:func:`make_data` writes the demo's data set from photos that scikit-image ships (no download).
"""
from __future__ import annotations

import os
import os.path as osp
from dataclasses import dataclass
from typing import Callable, Dict, Optional

import cv2
import numpy as np

from diffir_mm.utils.atomic import write_bytes_atomic

__all__ = ['Task', 'TASKS', 'TRAIN_PHOTOS', 'TEST_PHOTOS', 'SHOWCASE', 'TEST_MASK_PRESET',
           'TEST_MASK_SEED', 'photo', 'motion_blur', 'bicubic', 'held_out_mask', 'telea', 'read',
           'write', 'make_data']

TRAIN_PHOTOS = ('astronaut', 'rocket', 'stereo_motorcycle', 'immunohistochemistry', 'camera',
                'coins', 'page', 'clock')
TEST_PHOTOS = ('brick', 'text', 'chelsea', 'coffee')  # held out: two with edges, two photos
SHOWCASE = 'brick'  # the held-out photo of the figure
#: Masks of the held-out photos: the protocol's thin 512 px masks, seeded by the file name.
TEST_MASK_PRESET, TEST_MASK_SEED = 'thin_512', 0
#: Telea's neighbourhood radius (OpenCV's documented example uses 3).
TELEA_RADIUS = 3


def motion_blur(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Blur with a random linear motion kernel (7-17 px long, any direction, anti-aliased)."""
    size, ss = 19, 8  # kernel side, supersampling of the drawn line
    length, angle = rng.uniform(7, 17), rng.uniform(0, np.pi)
    dx, dy, c = np.cos(angle) * length * ss / 2, np.sin(angle) * length * ss / 2, size * ss / 2
    canvas = np.zeros((size * ss, size * ss), np.float32)
    cv2.line(canvas, (round(c - dx), round(c - dy)), (round(c + dx), round(c + dy)), 1.0, ss)
    kernel = cv2.resize(canvas, (size, size), interpolation=cv2.INTER_AREA)
    return cv2.filter2D(img.astype(np.float32), -1, kernel / kernel.sum(),
                        borderType=cv2.BORDER_REFLECT)


def bicubic(img: np.ndarray, scale: float) -> np.ndarray:
    """MATLAB-like bicubic resize (MMagic's ``MATLABLikeResize``, as used to make DF2K's LR)."""
    from mmagic.datasets.transforms import MATLABLikeResize
    return MATLABLikeResize(keys=['img'], scale=scale)._resize(img.astype(np.float32))


def held_out_mask(gt: np.ndarray, name: str) -> np.ndarray:
    """The held-out photo's mask (H, W) uint8, 255 = hole: the transform the configs use, with
    the evaluation preset and a fixed seed, so every run masks a photo alike."""
    from diffir_mm.datasets.transforms import GenerateInpaintingMask
    gen = GenerateInpaintingMask(preset=TEST_MASK_PRESET, seed=TEST_MASK_SEED)
    mask = gen.transform(dict(gt=gt, gt_path=f'{name}.png'))['mask'][..., 0]
    return (mask > 0).astype(np.uint8) * 255


def telea(masked: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """OpenCV's inpainting (Telea 2004) of an RGB uint8 image; ``mask`` non-zero = hole."""
    return cv2.inpaint(np.ascontiguousarray(masked, np.uint8), (mask > 0).astype(np.uint8),
                       TELEA_RADIUS, cv2.INPAINT_TELEA)


@dataclass(frozen=True)
class Task:
    """How a task degrades the photos and what DiffIR is up against.

    ``degrade(gt, rng, name)`` returns the network input and, for inpainting, the mask;
    ``classical(lq, mask)`` the baseline at the ground-truth size.
    """

    title: str
    baseline: str  # what the classical result is called
    degrade: Callable[[np.ndarray, np.random.Generator, str], Dict[str, np.ndarray]]
    classical: Callable[[np.ndarray, Optional[np.ndarray]], np.ndarray]
    scale: int = 1
    input_label: Optional[str] = None  # a figure panel for the input, besides the baseline
    paired_training: bool = True  # False: the config draws the training masks itself


def _masked(gt: np.ndarray, rng: np.random.Generator, name: str) -> Dict[str, np.ndarray]:
    mask = held_out_mask(gt, name)
    return dict(input=gt * (mask[..., None] == 0), mask=mask)


TASKS = {
    'deblur': Task('motion deblurring', 'Blurred input',
                   lambda gt, rng, name: dict(input=motion_blur(gt, rng)), lambda lq, m: lq),
    'sr': Task('x4 super-resolution', 'Bicubic x4',
               lambda gt, rng, name: dict(input=bicubic(gt, 1 / 4)),
               lambda lq, m: bicubic(lq, 4), scale=4, input_label='Input (nearest)'),
    'inpaint': Task('inpainting', 'OpenCV Telea', _masked, telea, input_label='Masked input',
                    paired_training=False),
}


def photo(name: str) -> np.ndarray:
    """A scikit-image photo (bundled with the package, no download) as RGB uint8."""
    import skimage.data
    img = getattr(skimage.data, name)()
    img = img[0] if isinstance(img, tuple) else img  # stereo_motorcycle: the left view
    return np.ascontiguousarray(np.stack([img] * 3, -1) if img.ndim == 2 else img[..., :3])


def write(path: str, rgb: np.ndarray) -> str:
    """Round, clip and write an RGB image (or a single-channel mask); returns ``path``."""
    os.makedirs(osp.dirname(path), exist_ok=True)
    img = np.clip(np.round(rgb), 0, 255).astype(np.uint8)
    encoded = cv2.imencode(osp.splitext(path)[1], img[..., ::-1] if img.ndim == 3 else img)[1]
    write_bytes_atomic(path, encoded.tobytes())
    return path


def read(path: str) -> np.ndarray:
    """Read an RGB uint8 image."""
    return cv2.imread(path, cv2.IMREAD_COLOR)[..., ::-1].copy()


def make_data(root: str, task: Task, seed: int = 0) -> int:
    """Write 128 px training sub-images (``train/target``, and ``train/input`` for paired tasks)
    and whole held-out photos (``test/{input,target}``, inpainting: ``test/mask``) as PNGs.

    Returns:
        The number of training images.
    """
    rng, size, stride, count = np.random.default_rng(seed), 128, 112, 0
    for name in TRAIN_PHOTOS:
        img = photo(name)
        h, w = img.shape[:2]
        for top in sorted({*range(0, h - size + 1, stride), h - size}):
            for left in sorted({*range(0, w - size + 1, stride), w - size}):
                gt, key = img[top:top + size, left:left + size], f'{name}_{top}_{left}.png'
                write(f'{root}/train/target/{key}', gt)
                if task.paired_training:
                    write(f'{root}/train/input/{key}', task.degrade(gt, rng, key)['input'])
                count += 1
    mult = 8 * task.scale
    for name in TEST_PHOTOS:
        img = photo(name)
        gt = img[:img.shape[0] // mult * mult, :img.shape[1] // mult * mult]
        write(f'{root}/test/target/{name}.png', gt)
        degraded = task.degrade(gt, rng, name)
        write(f'{root}/test/input/{name}.png', degraded['input'])
        if 'mask' in degraded:
            write(f'{root}/test/mask/{name}_mask000.png', degraded['mask'])
    return count
