"""Write LaMa-style evaluation folders (image crops + mask files) from the generated samples.

LaMa evaluates from folders written by its ``bin/gen_mask_dataset.py``: for an image
``<name>.<ext>`` that keeps a sample, ``<name>_crop000.png`` (the square crop of the resized
image) and ``<name>_crop000_mask000.png`` (0 / 255, 255 = hole); nothing for an image it leaves
out. :func:`write_eval_mask_folder` writes that layout from
:class:`~diffir_mm.datasets.transforms.LamaEvalRule`, the rule of the generated evaluation
pipeline, and decodes images as LaMa and the Places configs do (PIL, EXIF rotation ignored), so
evaluating the folder (``test_dataloader_mask_files``) and evaluating the generated samples
(``test_dataloader``) see the same images, crops and masks.

Every file is written atomically; a second call with the same arguments skips the images
already written (resume), and a folder made with other arguments, or holding other files, is
refused. ``lama_eval_masks.json`` in the folder records the arguments and, at the end, the
images left out.
"""
from __future__ import annotations

import json
import os
import os.path as osp
from dataclasses import dataclass, field
from typing import Callable, List, Mapping, Optional

import cv2
import mmcv
import numpy as np
from mmagic.datasets.basic_image_dataset import IMG_EXTENSIONS

from ..inference.io import write_bytes_atomic
from .transforms.lama_eval import LamaEvalRule

__all__ = ['write_eval_mask_folder', 'EvalFolderSummary', 'MANIFEST_NAME']

#: File in the output folder recording how it was made.
MANIFEST_NAME = 'lama_eval_masks.json'
ProgressFn = Callable[[int, int], None]


@dataclass
class EvalFolderSummary:
    """What :func:`write_eval_mask_folder` did.

    Attributes:
        written: Images whose crop and mask were written now.
        skipped: Images whose files were already there (resumed).
        dropped: Source paths of the images LaMa's rule leaves out.
    """

    written: int = 0
    skipped: int = 0
    dropped: List[str] = field(default_factory=list)


def _sources(src_dir: str, recursive: bool) -> List[str]:
    """Image paths under ``src_dir`` relative to it, sorted (MMagic's image extensions)."""
    found = []
    for root, dirs, files in os.walk(src_dir):
        dirs[:] = sorted(d for d in dirs if not d.startswith('.')) if recursive else []
        found += [osp.relpath(osp.join(root, f), src_dir) for f in files
                  if f.endswith(IMG_EXTENSIONS) and not f.startswith('.')]
    return sorted(found)


def _check_manifest(out_dir: str, settings: Mapping) -> None:
    """Refuse a folder made with other settings, or holding files of something else."""
    path = osp.join(out_dir, MANIFEST_NAME)
    if osp.isfile(path):
        with open(path, encoding='utf-8') as fh:
            made = {k: v for k, v in json.load(fh).items() if k in settings}
        if made != dict(settings):
            raise ValueError(f'{out_dir} was made with {made}, not {dict(settings)}; '
                             'use another folder')
    elif osp.isdir(out_dir) and os.listdir(out_dir):
        raise ValueError(f'{out_dir} is not empty and has no {MANIFEST_NAME}: not a folder '
                         'made by this tool; use an empty or new folder')


def _write_manifest(out_dir: str, content: Mapping) -> None:
    text = json.dumps(content, indent=2, sort_keys=True) + '\n'
    write_bytes_atomic(osp.join(out_dir, MANIFEST_NAME), text.encode('utf-8'))


def _encode_png(array: np.ndarray, path: str) -> bytes:
    ok, buf = cv2.imencode('.png', array)
    if not ok:
        raise ValueError(f'cannot encode {path} as PNG')
    return buf.tobytes()


def _read_rgb(path: str) -> np.ndarray:
    """Decode as LaMa and the Places evaluation configs do (PIL, RGB, no EXIF rotation)."""
    try:
        with open(path, 'rb') as fh:
            rgb = mmcv.imfrombytes(fh.read(), flag='color_ignore_orientation',
                                   channel_order='rgb', backend='pillow')
    except (OSError, ValueError) as err:
        raise ValueError(f'cannot read the image {path}: {err}') from None
    if rgb is None:
        raise ValueError(f'cannot read the image {path}')
    return rgb


def write_eval_mask_folder(src_dir: str, out_dir: str, preset: str, seed: int,
                           short_side: int = 512, recursive: bool = False,
                           progress: Optional[ProgressFn] = None) -> EvalFolderSummary:
    """Write LaMa's evaluation folder layout for the images of ``src_dir`` (module docstring).

    Args:
        src_dir: Folder of source images (``.jpg``, ``.png``, ... as MMagic lists them).
        out_dir: Output folder (created; sub-folders mirror ``src_dir`` with ``recursive``).
        preset: Evaluation mask preset name (``'thin_512'``, ``'thick_512'``, ...); the Places
            configs use ``thin_512`` for ``evaluation/random_thin_512`` and ``thick_512`` for
            ``evaluation/random_thick_512``.
        seed: The protocol's seed (the configs' ``eval_mask_seed``).
        short_side: Short side after the resize, and side of the crops (512 for Places).
        recursive: Also take the images of sub-folders (LaMa's script does).
        progress: Called as ``progress(done, total)`` after each image.

    Returns:
        The :class:`EvalFolderSummary`.
    """
    rule = LamaEvalRule(preset, seed, short_side)
    if not osp.isdir(src_dir):
        raise FileNotFoundError(f'source folder not found: {src_dir}')
    if osp.realpath(src_dir) == osp.realpath(out_dir):
        raise ValueError('the output folder must differ from the source folder')
    settings = dict(preset=preset, seed=rule.seed, short_side=rule.short_side)
    _check_manifest(out_dir, settings)
    os.makedirs(out_dir, exist_ok=True)
    _write_manifest(out_dir, dict(settings, finished=False))
    sources = _sources(src_dir, recursive)
    if not sources:
        raise FileNotFoundError(f'no images in {src_dir}')
    summary = EvalFolderSummary()
    for done, rel in enumerate(sources, 1):
        stem = osp.join(out_dir, osp.splitext(rel)[0] + '_crop000')
        image_path, mask_path = stem + '.png', stem + '_mask000.png'
        if osp.isfile(image_path) and osp.isfile(mask_path):
            summary.skipped += 1
        else:
            path = osp.join(src_dir, rel)
            rgb = _read_rgb(path)
            sample = rule.sample_source(osp.basename(rel), *rgb.shape[:2])
            if sample is None:
                summary.dropped.append(path)
            else:
                crop = sample.crop(rule.resize(rgb))
                mask = (sample.mask * 255).astype(np.uint8)
                write_bytes_atomic(mask_path, _encode_png(mask, mask_path))
                write_bytes_atomic(image_path, _encode_png(crop[..., ::-1], image_path))
                summary.written += 1
        if progress is not None:
            progress(done, len(sources))
    _write_manifest(out_dir, dict(settings, finished=True, images=len(sources),
                                  dropped_images=[osp.relpath(p, src_dir)
                                                  for p in summary.dropped]))
    return summary
