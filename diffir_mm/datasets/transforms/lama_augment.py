"""LaMa's Places2 training augmentations (``transform_variant: distortions``), reproducibly.

DiffIR-inpainting trains on Places2 with LaMa's ``get_transforms('distortions', 256)``
(``saicinpainting/training/data/datasets.py``; CelebA-HQ uses ``no_augs``), written for
albumentations 0.5.2 and imgaug 0.4. ``configs/_base_/datasets/places_inpaint.py`` writes that
list in albumentations 1.4 terms, with every default of the old versions spelled out:

* ``IAAPerspective2(scale=(0, 0.06))`` (imgaug, p 0.5, bilinear, replicate border)
  -> ``Perspective``;
* ``IAAAffine2(scale=(0.7, 1.3), rotate=(-40, 40), shear=(-0.1, 0.1))`` (imgaug, p 0.5,
  bilinear, ``mode='reflect'`` = OpenCV ``BORDER_REFLECT_101``, x and y scales drawn
  independently) -> ``Affine``;
* ``PadIfNeeded(256, 256)`` (reflect-101), ``OpticalDistortion()`` (p 0.5, ``distort_limit``
  0.05; its ``shift_limit`` 0.05 is a shift in *pixels* rounded to an integer, i.e. always 0),
  ``RandomCrop(256, 256)``, ``HorizontalFlip()``, ``CLAHE()`` (clip 4, 8x8 tiles),
  ``RandomBrightnessContrast(0.2, 0.2)``, ``HueSaturationValue(5, 30, 5)``, each p 0.5 except
  the pad and the crop. ``ToFloat`` is left out: the images stay uint8 and the model's data
  preprocessor divides by 255.

Two things differ in albumentations 1.4 and are put back here:

* its ``OpticalDistortion`` fills the border with black and centres the distortion at
  ``(w/2 - 0.5, h/2 - 0.5)``; :class:`LamaOpticalDistortion` uses the old reflect-101 border and
  ``(w/2, h/2)`` centre;
* every ``Compose`` owns a private generator seeded from the OS, so runs could not be repeated
  and ``--resume`` could not continue them. :class:`SeededAlbumentations` (MMagic's
  ``Albumentations`` otherwise) re-seeds it for every sample from NumPy's global generator, which
  mmengine seeds per worker and the project's random-state hook stores in checkpoints.
"""
from __future__ import annotations

import os
from typing import Any, Dict, List

# albumentations asks PyPI for a newer version on import unless told not to (no network here).
os.environ.setdefault('NO_ALBUMENTATIONS_UPDATE', '1')

import albumentations as A  # noqa: E402
import cv2  # noqa: E402
import numpy as np  # noqa: E402
from albumentations.augmentations.geometric import functional as albu_geometric  # noqa: E402
from mmagic.datasets.transforms import Albumentations  # noqa: E402
from mmagic.registry import TRANSFORMS  # noqa: E402

__all__ = ['EXTRA_ALBUMENTATIONS', 'LamaOpticalDistortion', 'SeededAlbumentations']


class LamaOpticalDistortion(A.OpticalDistortion):
    """albumentations 0.5.2's ``OpticalDistortion``: reflect-101 border, centre ``(w/2, h/2)``.

    Args:
        distort_limit: Range of the distortion coefficient ``k`` (``k1 = k2 = k``).
        p: Probability of applying the transform.
    """

    def __init__(self, distort_limit: float = 0.05, p: float = 0.5) -> None:
        super().__init__(distort_limit=distort_limit, p=p)

    def get_params_dependent_on_data(self, params: Dict[str, Any],
                                     data: Dict[str, Any]) -> Dict[str, Any]:
        """The remap grids of one draw of ``k`` (camera model, principal point at the centre)."""
        height, width = params['shape'][:2]
        k = self.py_random.uniform(*self.distort_limit)
        map_x, map_y = albu_geometric.get_camera_matrix_distortion_maps(
            (height, width), k, (width * 0.5, height * 0.5))
        return {'map_x': map_x, 'map_y': map_y}

    def apply(self, img: np.ndarray, map_x: np.ndarray, map_y: np.ndarray,
              **params: Any) -> np.ndarray:
        """Remap with the reflect-101 border of albumentations 0.5.2."""
        return albu_geometric.remap(img, map_x, map_y, self.interpolation,
                                    cv2.BORDER_REFLECT_101, 0)


#: Classes a :class:`SeededAlbumentations` ``type`` may name besides albumentations' own.
EXTRA_ALBUMENTATIONS = {'LamaOpticalDistortion': LamaOpticalDistortion}


@TRANSFORMS.register_module()
class SeededAlbumentations(Albumentations):
    """MMagic's ``Albumentations`` drawing its random numbers from NumPy's global generator.

    Args:
        keys: Images to transform (each one gets its own draw).
        transforms: albumentations transform dicts; ``type`` names an albumentations class or
            one of :data:`EXTRA_ALBUMENTATIONS`.
    """

    def __init__(self, keys: List[str], transforms: List[dict]) -> None:
        super().__init__(keys=keys, transforms=transforms)

    def albu_builder(self, cfg: dict):
        """Build one transform, resolving :data:`EXTRA_ALBUMENTATIONS` names first."""
        if isinstance(cfg.get('type'), str) and cfg['type'] in EXTRA_ALBUMENTATIONS:
            cfg = dict(cfg, type=EXTRA_ALBUMENTATIONS[cfg['type']])
        return super().albu_builder(cfg)

    def transform(self, results: Dict) -> Dict:
        """Seed the composition from ``np.random``, then apply it to every key."""
        self.aug.set_random_seed(int(np.random.randint(2**31 - 1)))
        return super().transform(results)
