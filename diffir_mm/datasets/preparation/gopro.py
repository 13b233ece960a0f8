"""GoPro download -> the deblurring recipe's layout (``configs/_base_/datasets/gopro_deblur.py``).

Training pairs are cut into overlapping square crops as the official
``DiffIR-demotionblur/generate_patches_gopro.py`` (Restormer's script) does: 512 x 512 crops at a
stride of 512 - 256 (overlap 256), the top-left corners ``0, stride, 2 * stride, ...`` below
``size - 512`` plus one last crop flush with the far edge, numbered row by row from 1 and named
``<frame>-<k>.png``; a 720 x 1280 frame gives 2 x 4 = 8 crops. Test pairs are copied whole.

Accepted download layouts (``SRC/train`` and ``SRC/test``):

* ``<split>/input`` + ``<split>/target`` -- the DiffIR / Restormer download (the test split may
  also be ``test/GoPro/{input,target}``);
* ``<split>/blur`` + ``<split>/sharp`` -- MMagic's flattened GoPro;
* ``<split>/<sequence>/blur`` + ``<split>/<sequence>/sharp`` -- the original ``GOPRO_Large``;
  frames are named ``<sequence>_<frame>`` (frame numbers repeat across sequences).

Output: ``OUT/train/{input,target}`` (crops) and ``OUT/test/{input,target}`` (whole frames).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

from PIL import Image

from diffir_mm.datasets.file_checks import Finding, list_images, match_pairs
from diffir_mm.inference.io import ImageIOError

from .common import (Job, PrepareError, Summary, copy_job, count_by_folder, guard_output,
                     read_bgr, run_jobs, write_array)

__all__ = ['crop_corners', 'find_gopro_pairs', 'prepare_gopro']

#: (blurry folder, sharp folder) names of the accepted layouts.
_FOLDER_NAMES = (('input', 'target'), ('blur', 'sharp'))

Pair = Tuple[str, str, str]  # (output name without suffix, blurry file, sharp file)


def crop_corners(length: int, patch: int, stride: int) -> List[int]:
    """Top (or left) corners of the official sliding crops along one side of ``length``."""
    corners = list(range(0, length - patch, stride))
    corners.append(length - patch)
    return corners


def _flat_pairs(blur_dir: Path, sharp_dir: Path, prefix: str = ''
                ) -> Tuple[List[Pair], List[Finding]]:
    pairs, sharp_only, blur_only = match_pairs(list_images(str(blur_dir)),
                                               list_images(str(sharp_dir)))
    found = [(prefix + Path(sharp).stem, blur, sharp) for blur, sharp in pairs]
    problems = [Finding(p, 'unpaired', 'sharp frame without its blurry frame') for p in sharp_only]
    problems += [Finding(p, 'unpaired', 'blurry frame without its sharp frame') for p in blur_only]
    return found, problems


def find_gopro_pairs(src: Path, split: str) -> Tuple[List[Pair], List[Finding]]:
    """The (name, blurry, sharp) frames of ``src/<split>`` in any accepted layout.

    Raises:
        PrepareError: No accepted layout under ``src/<split>``.
    """
    roots = [src / split] + ([src / split / 'GoPro'] if split == 'test' else [])
    for root in roots:
        for blur_name, sharp_name in _FOLDER_NAMES:
            if (root / blur_name).is_dir() and (root / sharp_name).is_dir():
                return _flat_pairs(root / blur_name, root / sharp_name)
    base = src / split
    sequences = sorted(p for p in base.iterdir() if (p / 'blur').is_dir()) \
        if base.is_dir() else []
    if not sequences:
        raise PrepareError(f'no GoPro {split} frames found under {base}: expected {split}/input + '
                           f'{split}/target, {split}/blur + {split}/sharp or '
                           f'{split}/<sequence>/blur + <sequence>/sharp')
    pairs, problems = [], []
    for seq in sequences:
        found, missing = _flat_pairs(seq / 'blur', seq / 'sharp', prefix=f'{seq.name}_')
        pairs += found
        problems += missing
    return pairs, problems


def _crop_job(job: Job) -> Optional[str]:
    """Write the crops of one (blurry, sharp) frame; the reason when it cannot."""
    blur_path, sharp_path, patch, stride = job.params
    try:
        blur, sharp = read_bgr(blur_path), read_bgr(sharp_path)
    except ImageIOError as err:
        return str(err)
    if blur.shape != sharp.shape:
        return f'blurry {blur.shape[:2]} and sharp {sharp.shape[:2]} frames differ in size'
    height, width = sharp.shape[:2]
    rows, cols = crop_corners(height, patch, stride), crop_corners(width, patch, stride)
    corners = [(top, left) for top in rows for left in cols]
    half = len(job.outputs) // 2
    if len(corners) != half:
        return f'size changed while preparing ({width}x{height})'
    for (top, left), blur_out, sharp_out in zip(corners, job.outputs[:half], job.outputs[half:]):
        window = (slice(top, top + patch), slice(left, left + patch))
        if not os.path.exists(blur_out):
            write_array(blur_out, blur[window])
        if not os.path.exists(sharp_out):
            write_array(sharp_out, sharp[window])
    return None


def _train_jobs(pairs: Sequence[Pair], out: Path, patch: int, stride: int,
                summary: Summary) -> List[Job]:
    jobs = []
    for name, blur, sharp in pairs:
        try:
            with Image.open(sharp) as img:
                width, height = img.size
        except OSError as err:
            summary.problems.append(Finding(sharp, 'unreadable', f'cannot decode image ({err})'))
            continue
        if min(width, height) < patch:
            summary.problems.append(Finding(sharp, 'size', f'{width}x{height} is smaller than '
                                                           f'the {patch}x{patch} crops'))
            continue
        count = len(crop_corners(height, patch, stride)) * len(crop_corners(width, patch, stride))
        names = [f'{name}-{k}.png' for k in range(1, count + 1)]
        outputs = tuple(str(out / 'train' / 'input' / n) for n in names) + tuple(
            str(out / 'train' / 'target' / n) for n in names)
        jobs.append(Job(outputs, sharp, (blur, sharp, patch, stride)))
    return jobs


def prepare_gopro(src: Path, out: Path, patch: int = 512, overlap: int = 256,
                  workers: int = 1, link: str = 'copy') -> Summary:
    """Write the recipe's GoPro layout (see the module docstring).

    Args:
        src: The download (holding ``train`` and ``test``).
        out: Output root (the recipe's ``data_root``).
        patch: Crop side (official 512).
        overlap: Overlap of neighbouring crops (official 256; stride = patch - overlap).
        workers: Worker processes.
        link: How test frames are written: ``'copy'``, ``'hardlink'`` or ``'symlink'``.

    Returns:
        The summary of what was written.
    """
    if not 0 <= overlap < patch:
        raise PrepareError(f'--overlap must be in [0, {patch}) for {patch} crops, got {overlap}')
    guard_output(out, [src])
    summary = Summary()
    train, problems = find_gopro_pairs(src, 'train')
    test, test_problems = find_gopro_pairs(src, 'test')
    summary.problems += problems + test_problems
    folder_of = count_by_folder(str(out))
    jobs = _train_jobs(train, out, patch, patch - overlap, summary)
    run_jobs(jobs, _crop_job, summary, folder_of, workers, desc='train crops')
    test_jobs = []
    for name, blur, sharp in test:
        suffix = Path(sharp).suffix
        if Path(blur).suffix != suffix:
            summary.problems.append(Finding(sharp, 'unpaired', 'blurry and sharp frames have '
                                                               'different formats'))
            continue
        test_jobs.append(Job((str(out / 'test' / 'input' / f'{name}{suffix}'),
                              str(out / 'test' / 'target' / f'{name}{suffix}')), sharp,
                             ((blur, sharp), link, True)))
    run_jobs(test_jobs, copy_job, summary, folder_of, workers, desc='test pairs')
    summary.notes.append(f'the recipe reads data/GoPro (data_root of '
                         f'configs/_base_/datasets/gopro_deblur.py): point it at {out}')
    return summary
