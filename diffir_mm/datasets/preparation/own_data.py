"""A user's own folders -> a checked, seeded train / validation split the fine-tune recipes read.

* ``images DIR``: single images (inpainting, real-world SR: the degraded input is synthesised
  while training) -> ``OUT/train/`` and ``OUT/val/``.
* ``pairs DIR_LQ DIR_GT``: degraded / clean pairs with the same file names (deblurring, SR with
  real pairs) -> ``OUT/{train,val}/input`` (LQ) and ``OUT/{train,val}/target`` (GT), the folder
  names of the GoPro layout.

Every file is decoded first (:mod:`diffir_mm.datasets.file_checks`, the checker of
``tools/check_data.py``): unreadable files, files without a partner and pairs whose sizes the
recipe cannot use (GT = LQ x ``scale``, GT at least the training ``crop``) are listed and left
out. Plain 8-bit RGB files are copied byte for byte; grayscale, alpha or 16-bit files are
written as the 8-bit RGB PNG the training loader would see (OpenCV ``IMREAD_COLOR``) and listed.

The split is drawn once: the good names sorted, shuffled with ``seed``, the first
``round(val_ratio * n)`` (at least one when there are two or more) held out. It is saved as
``OUT/split.json`` before anything is copied; a later run into the same folder (resuming an
interrupted one) must find the same split, so a held-out image never lands in training.
"""
from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import cv2

from diffir_mm.datasets.file_checks import (Finding, ImageInfo, PairRule, check_files,
                                            check_pairs, list_images, non_rgb_reason)
from diffir_mm.inference.io import ImageIOError, decode_file

from .common import (Job, PrepareError, Summary, copy_file, count_by_folder, guard_output,
                     run_jobs, write_array, write_output)

__all__ = ['split_names', 'prepare_images', 'prepare_pairs', 'SPLIT_FILE']

SPLIT_FILE = 'split.json'


def split_names(names: Sequence[str], val_ratio: float, seed: int) -> Tuple[List[str], List[str]]:
    """``(train, val)`` names: a seeded shuffle of the sorted names, the first part held out."""
    if not 0 <= val_ratio < 1:
        raise PrepareError(f'--val-ratio must be in [0, 1), got {val_ratio}')
    order = sorted(names)
    random.Random(seed).shuffle(order)
    count = round(val_ratio * len(order))
    if val_ratio > 0 and len(order) >= 2:
        count = min(max(count, 1), len(order) - 1)
    return sorted(order[count:]), sorted(order[:count])


def _write_job(job: Job) -> Optional[str]:
    """Copy each source unchanged, or (``convert``) write it as the 8-bit RGB PNG training sees."""
    sources, convert = job.params
    try:
        for src, dst in zip(sources, job.outputs):
            if convert:
                write_array(dst, decode_file(src, cv2.IMREAD_COLOR))
            else:
                copy_file(src, dst)
    except ImageIOError as err:
        return str(err)
    return None


def _fixed_split(out: Path, names: Sequence[str], val_ratio: float, seed: int
                 ) -> Dict[str, List[str]]:
    """``{'train': names, 'val': names}``, drawn now or reused from an earlier run into ``out``."""
    train, val = split_names(names, val_ratio, seed)
    record = {'seed': seed, 'val_ratio': val_ratio, 'train': train, 'val': val}
    path = out / SPLIT_FILE
    if path.exists():
        saved = json.loads(path.read_text())
        if saved != record:
            raise PrepareError(f'{out} already holds another split ({path}: other files, seed '
                               'or ratio); choose a new output folder')
    else:
        write_output(str(path), json.dumps(record, indent=1).encode())
    return {'train': train, 'val': val}


def _write_split(out: Path, splits: Dict[str, List[str]],
                 sample: Callable[[str], Tuple[Tuple[str, ...], bool, str]],
                 subfolders: Sequence[str], summary: Summary, workers: int, seed: int,
                 unit: str) -> None:
    """Write every name of ``splits`` to ``out/<split>/<subfolder>/<file>``.

    Args:
        sample: ``name -> (sources, convert, file name)``, one source per subfolder.
    """
    jobs, converted = [], 0
    for folder, names in splits.items():
        for name in names:
            sources, convert, file_name = sample(name)
            converted += convert
            outputs = tuple(str(out / folder / sub / file_name) for sub in subfolders)
            jobs.append(Job(outputs, sources[-1], (sources, convert)))
    run_jobs(jobs, _write_job, summary, count_by_folder(str(out)), workers, desc='writing')
    if converted:
        summary.notes.append(f'{converted} {unit}(s) were not 8-bit RGB files of one format '
                             'and were written as the 8-bit RGB PNGs training reads')
    summary.notes.append(f'split: {len(splits["train"])} train / {len(splits["val"])} val '
                         f'{unit}s (seed {seed}) in {out / SPLIT_FILE}')


def _output_name(name: str, suffix: str, convert: bool) -> str:
    return f'{name}.png' if convert else f'{name}{suffix}'


def _names(paths: Sequence[str], root: Path) -> Dict[str, str]:
    """``{name: path}`` with the path below ``root`` as name (``a/b.jpg`` -> ``a_b``)."""
    found: Dict[str, str] = {}
    for path in paths:
        rel = Path(path).relative_to(root).with_suffix('')
        name = '_'.join(rel.parts)
        if name in found:
            raise PrepareError(f'{found[name]} and {path} would get the same name {name!r}')
        found[name] = path
    return found


def _too_small(info: ImageInfo, min_size: int) -> bool:
    return min(info.height, info.width) < min_size


def prepare_images(src: Path, out: Path, val_ratio: float = 0.1, seed: int = 0,
                   recursive: bool = False, min_size: int = 0, workers: int = 1) -> Summary:
    """Check the images of ``src`` and write the split (see the module docstring).

    Args:
        src: The user's folder.
        out: Output root (the fine-tune config's ``data_root``).
        val_ratio: Share held out for validation.
        seed: Seed of the split.
        recursive: Also take images in sub-folders (named ``<sub>_<name>``).
        min_size: Shorter side an image needs (the recipe's training patch); 0 for any.
        workers: Worker processes.
    """
    guard_output(out, [src])
    files = list_images(str(src), recursive=recursive)
    if not files:
        raise PrepareError(f'no images found in {src}')
    names = _names(files, src)
    infos, findings = check_files(files, workers=workers, desc='checking')
    summary = Summary()
    summary.problems += [f for f in findings if f.kind == 'unreadable']
    good = {}
    for name, path in names.items():
        if path not in infos:
            continue
        if _too_small(infos[path], min_size):
            summary.problems.append(Finding(path, 'size', f'{infos[path].width}x'
                                            f'{infos[path].height} is smaller than {min_size}'))
            continue
        good[name] = path
    if not good:
        raise PrepareError(f'none of the {len(files)} images of {src} can be used')
    def sample(name: str) -> Tuple[Tuple[str, ...], bool, str]:
        convert = non_rgb_reason(infos[good[name]]) is not None
        return (good[name], ), convert, _output_name(name, Path(good[name]).suffix, convert)

    splits = _fixed_split(out, sorted(good), val_ratio, seed)
    _write_split(out, splits, sample, ('', ), summary, workers, seed, 'image')
    return summary


def prepare_pairs(lq_dir: Path, gt_dir: Path, out: Path, val_ratio: float = 0.1, seed: int = 0,
                  scale: int = 1, crop: int = 0, workers: int = 1) -> Summary:
    """Check the pairs of ``lq_dir`` / ``gt_dir`` and write the split (see the module docstring).

    Args:
        lq_dir, gt_dir: Degraded and clean images with the same names.
        out: Output root (the fine-tune config's ``data_root``).
        val_ratio: Share held out for validation.
        seed: Seed of the split.
        scale: GT size / LQ size (1 for deblurring).
        crop: The recipe's GT training patch; smaller pairs are left out (0: no minimum).
        workers: Worker processes.
    """
    guard_output(out, [lq_dir, gt_dir])
    lq_files, gt_files = list_images(str(lq_dir)), list_images(str(gt_dir))
    if not gt_files:
        raise PrepareError(f'no images found in {gt_dir}')
    rule = PairRule(scale=scale, min_gt_size=crop)
    pairs, findings = check_pairs(lq_files, gt_files, rule, workers=workers, desc='checking')
    summary = Summary()
    summary.problems += [f for f in findings if f.kind != 'non-rgb']
    if not pairs:
        raise PrepareError(f'none of the {len(gt_files)} images of {gt_dir} has a usable pair')
    non_rgb = {f.path for f in findings if f.kind == 'non-rgb'}
    by_name = {Path(gt).stem: (lq, gt) for lq, gt in pairs}
    def sample(name: str) -> Tuple[Tuple[str, ...], bool, str]:
        lq, gt = by_name[name]
        convert = (lq in non_rgb or gt in non_rgb
                   or Path(lq).suffix.lower() != Path(gt).suffix.lower())
        return (lq, gt), convert, _output_name(name, Path(gt).suffix, convert)

    splits = _fixed_split(out, sorted(by_name), val_ratio, seed)
    _write_split(out, splits, sample, ('input', 'target'), summary, workers, seed, 'pair')
    return summary
