"""DF2K (+ OST) -> the real-world SR recipes' GT sub-images (``realsr_df2k_ost.py``).

The official data preparation (``DiffIR-RealSR/scripts/``, from Real-ESRGAN's ``docs/Training.md``)
in three steps, written again here to be resumable and parallel:

1. multiscale DF2K (``generate_multiscale_DF2K.py``): every HR image downscaled with Pillow's
   LANCZOS by 0.75, 0.5 and 1/3 (``int(side * scale)``), plus a copy whose shorter edge is
   400 px, saved as ``<name>T0.png`` ... ``<name>T3.png``;
2. sub-images (``extract_subimages.py --crop_size 400 --step 200``, threshold 0): windows at
   ``0, 200, 400, ...`` up to ``side - 400``, plus one flush with the far edge when the rest is
   larger than the threshold, numbered row by row as ``<name>_s001.png``; every HR image, every
   multiscale image and every OST image is cut (an image smaller than 400 px gives none);
3. the meta file (``generate_meta_info.py``): one path per line, relative to ``GT_sub``.

Output (the recipe's ``data_root``, default ``data/DF2K_OST``): ``OUT/DF2K_multiscale/``,
``OUT/GT_sub/`` and ``OUT/meta_info_DF2Kmultiscale+OST_sub.txt`` (the recipe's
``train_ann_file``). MMagic's ``tools/dataset_converters/df2k_ost`` does step 2 alone (not
resumably); OpenCV writes the crops, Pillow the multiscale images (as the official script).
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

from PIL import Image

from diffir_mm.datasets.file_checks import Finding, list_images
from diffir_mm.inference.io import ImageIOError

from .common import (Job, PrepareError, Summary, count_by_folder, guard_output, read_bgr,
                     run_jobs, stems, write_array, write_output)

__all__ = ['MULTISCALE_FACTORS', 'multiscale_sizes', 'subimage_corners', 'prepare_df2k',
           'META_FILE']

#: Downscaling factors of the multiscale set (then one image with a 400 px shorter edge).
MULTISCALE_FACTORS = (0.75, 0.5, 1 / 3)
SHORTEST_EDGE = 400
META_FILE = 'meta_info_DF2Kmultiscale+OST_sub.txt'


def multiscale_sizes(width: int, height: int) -> List[Tuple[int, int]]:
    """The (width, height) of ``T0`` ... ``T3`` for a ``width`` x ``height`` image."""
    sizes = [(int(width * f), int(height * f)) for f in MULTISCALE_FACTORS]
    if width < height:
        sizes.append((SHORTEST_EDGE, int(SHORTEST_EDGE * (height / width))))
    else:
        sizes.append((int(SHORTEST_EDGE * (width / height)), SHORTEST_EDGE))
    return sizes


def subimage_corners(length: int, crop: int, step: int, thresh: int = 0) -> List[int]:
    """Window starts along one side (empty when the side is shorter than ``crop``)."""
    if length < crop:
        return []
    corners = list(range(0, length - crop + 1, step))
    if length - (corners[-1] + crop) > thresh:
        corners.append(length - crop)
    return corners


def _multiscale_job(job: Job) -> Optional[str]:
    try:
        with Image.open(job.source) as img:
            img.load()
            sizes = multiscale_sizes(*img.size)
            for (width, height), path in zip(sizes, job.outputs):
                buffer = io.BytesIO()
                img.resize((width, height), resample=Image.LANCZOS).save(buffer, format='PNG')
                write_output(path, buffer.getvalue())
    except (OSError, ValueError) as err:
        return f'cannot decode image ({err})'
    return None


def _subimage_job(job: Job) -> Optional[str]:
    crop, step, thresh = job.params
    try:
        img = read_bgr(job.source)
    except ImageIOError as err:
        return str(err)
    rows = subimage_corners(img.shape[0], crop, step, thresh)
    cols = subimage_corners(img.shape[1], crop, step, thresh)
    windows = [(top, left) for top in rows for left in cols]
    if len(windows) != len(job.outputs):
        return 'the image changed while preparing'
    for (top, left), path in zip(windows, job.outputs):
        write_array(path, img[top:top + crop, left:left + crop])
    return None


def _size(path: str) -> Optional[Tuple[int, int]]:
    try:
        with Image.open(path) as img:
            return img.size
    except OSError:
        return None


def prepare_df2k(hr_dirs: Sequence[Path], out: Path, ost_dir: Optional[Path] = None,
                 multiscale: bool = True, crop: int = 400, step: int = 200, thresh: int = 0,
                 workers: int = 1) -> Summary:
    """Write the multiscale set, the sub-images and the meta file (see the module docstring).

    Args:
        hr_dirs: Folders of DF2K HR images (``DIV2K_train_HR``, ``Flickr2K_HR``, or one merged
            ``DF2K_HR``).
        out: Output root.
        ost_dir: The OST training images (searched recursively), optional.
        multiscale: Also build and cut the multiscale set (official: yes).
        crop, step, thresh: Sub-image size, stride and threshold (official 400, 200, 0).
        workers: Worker processes.

    Returns:
        The summary.
    """
    inputs = list(hr_dirs) + ([ost_dir] if ost_dir else [])
    guard_output(out, inputs)
    hr_files = [f for d in hr_dirs for f in list_images(str(d))]
    ost_files = list_images(str(ost_dir), recursive=True) if ost_dir else []
    if not hr_files and not ost_files:
        raise PrepareError(f'no images found in {", ".join(str(d) for d in inputs)}')
    stems(hr_files + ost_files)  # the sub-image names must not collide
    summary = Summary()
    folder_of = count_by_folder(str(out))
    scaled: List[str] = []
    if multiscale:
        jobs = []
        for path in hr_files:
            outputs = tuple(str(out / 'DF2K_multiscale' / f'{Path(path).stem}T{k}.png')
                            for k in range(len(MULTISCALE_FACTORS) + 1))
            jobs.append(Job(outputs, path))
        run_jobs(jobs, _multiscale_job, summary, folder_of, workers, desc='multiscale')
        bad = {f.path for f in summary.problems}
        scaled = [p for job in jobs if job.source not in bad for p in job.outputs]
    jobs, small = [], 0
    bad = {f.path for f in summary.problems}
    for path in [p for p in hr_files if p not in bad] + scaled + ost_files:
        size = _size(path)
        if size is None:
            summary.problems.append(Finding(path, 'unreadable', 'cannot decode image'))
            continue
        count = len(subimage_corners(size[1], crop, step, thresh)) * len(
            subimage_corners(size[0], crop, step, thresh))
        if count == 0:
            small += 1
            continue
        stem, suffix = Path(path).stem, Path(path).suffix
        outputs = tuple(str(out / 'GT_sub' / f'{stem}_s{k:03d}{suffix}')
                        for k in range(1, count + 1))
        jobs.append(Job(outputs, path, (crop, step, thresh)))
    run_jobs(jobs, _subimage_job, summary, folder_of, workers, desc='sub-images')
    bad = {f.path for f in summary.problems}
    names = sorted(Path(p).name for job in jobs if job.source not in bad for p in job.outputs)
    write_output(str(out / META_FILE), ''.join(f'{n}\n' for n in names).encode())
    summary.add('.', 1)
    if small:
        summary.notes.append(f'{small} image(s) smaller than {crop} px gave no sub-image')
    summary.notes.append(f'the recipe reads data/DF2K_OST (realsr_df2k_ost.py: data_root; '
                         f'train_ann_file = {META_FILE!r}): point it at {out}')
    return summary
