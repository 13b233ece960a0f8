"""CelebA-HQ and Places2 downloads -> LaMa's layouts, which the inpainting recipes read.

CelebA-HQ (LaMa ``fetch_data/celebahq_dataset_prepare.sh``; ``celebahq_inpaint.py``):

* ``data256x256/00001.jpg`` ... ``30000.jpg`` are renamed ``0.jpg`` ... ``29999.jpg``;
* LaMa's ``train_shuffled.flist`` (28,000 names, after renaming) is shuffled; its first 2,000
  names become ``val_source_256`` (validation and the test protocol), the rest ``train_256``;
  ``val_shuffled.flist`` (2,000 names) becomes ``visual_test_source_256``. The two lists ship
  with LaMa and DiffIR-inpainting (``fetch_data/``): pass that folder as ``--flists``. LaMa
  shuffles with an unseeded ``shuf``; here the shuffle is seeded (``--seed``), so the split is
  reproducible, and the three lists are written next to the folders.

Places2-Standard (LaMa ``fetch_data/places_standard_*.sh``; ``places_inpaint.py``):

* ``train``: every image of ``train_large_places365standard`` (its folder tree kept: the recipe
  searches it recursively);
* ``val_hires``: 2,000 images sampled from ``test_large`` (LaMa ``sampler.py``; the best
  checkpoint is chosen on them), ``visual_test_hires``: 100 sampled from ``val_large``;
* ``evaluation/hires``: 30,000 images sampled from ``val_large`` (``eval_sampler.py``): the test
  protocol. LaMa samples with an unseeded ``random.shuffle``; here it is seeded.

Evaluation masks (LaMa ``bin/gen_mask_dataset.py`` folders) are written by ``write_eval_masks``,
a function parameter (:data:`EvalMaskWriter`): Places ``evaluation/random_{thin,thick}_512``
from ``evaluation/hires``; ``tools/prepare_data.py`` passes
:func:`diffir_mm.datasets.write_eval_mask_folder` (the samples the recipe's test pipelines
generate). CelebA-HQ ``val_256/random_{thin,thick}_256`` take the same parameter; no writer
reproduces the CelebA-HQ evaluators' masks yet, so the tool leaves it out. Without a writer the
step is skipped and the summary says so (the recipes then generate the masks on the fly).
"""
from __future__ import annotations

import random
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from diffir_mm.datasets.file_checks import Finding, list_images

from .common import (Job, PrepareError, Summary, copy_job, count_by_folder, guard_output,
                     run_jobs, write_output)

__all__ = ['EvalMaskWriter', 'CELEBAHQ_EVAL_MASKS', 'PLACES_EVAL_MASKS', 'celebahq_split',
           'prepare_celebahq', 'prepare_places', 'sample_names']

#: ``write_eval_masks(images_folder, output_folder, preset)``: LaMa's evaluation folder of
#: one mask preset ('thin_256', 'thick_256', 'thin_512', 'thick_512') for every image.
EvalMaskWriter = Callable[[str, str, str], Any]

#: (image folder, mask folder, preset) of the CelebA-HQ and Places test protocols.
CELEBAHQ_EVAL_MASKS = (('val_source_256', 'val_256/random_thin_256', 'thin_256'),
                       ('val_source_256', 'val_256/random_thick_256', 'thick_256'))
PLACES_EVAL_MASKS = (('evaluation/hires', 'evaluation/random_thin_512', 'thin_512'),
                     ('evaluation/hires', 'evaluation/random_thick_512', 'thick_512'))
CELEBAHQ_VAL_COUNT = 2000


def _read_flist(path: Path) -> List[str]:
    if not path.is_file():
        raise PrepareError(f'{path} not found: pass the fetch_data folder of LaMa or '
                           'DiffIR-inpainting as --flists (it holds train_shuffled.flist and '
                           'val_shuffled.flist)')
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def celebahq_split(train_flist: Sequence[str], visual_flist: Sequence[str], seed: int,
                   val_count: int = CELEBAHQ_VAL_COUNT) -> Dict[str, List[str]]:
    """``{'train_256': ..., 'val_source_256': ..., 'visual_test_source_256': ...}`` names."""
    shuffled = list(train_flist)
    random.Random(seed).shuffle(shuffled)
    return {'val_source_256': shuffled[:val_count], 'train_256': shuffled[val_count:],
            'visual_test_source_256': list(visual_flist)}


def _write_masks(out: Path, protocol: Sequence[Tuple[str, str, str]],
                 write_eval_masks: Optional[EvalMaskWriter], summary: Summary) -> None:
    if write_eval_masks is None:
        summary.notes.append('evaluation masks: not written (no mask writer wired); the recipes '
                             'generate the same masks on the fly')
        return
    for images, masks, preset in protocol:
        write_eval_masks(str(out / images), str(out / masks), preset)
        summary.add(masks, len(list_images(str(out / masks))))


def _renamed_index(path: str) -> Optional[str]:
    """``00001.jpg`` -> ``0.jpg`` (LaMa's re-indexing), None for other names."""
    stem, suffix = Path(path).stem, Path(path).suffix
    return f'{int(stem) - 1}{suffix}' if stem.isdigit() and int(stem) >= 1 else None


def prepare_celebahq(src: Path, out: Path, flists: Path, seed: int = 0,
                     val_count: int = CELEBAHQ_VAL_COUNT, workers: int = 1, link: str = 'copy',
                     check: bool = True,
                     write_eval_masks: Optional[EvalMaskWriter] = None) -> Summary:
    """Write LaMa's CelebA-HQ layout (see the module docstring).

    Args:
        src: ``data256x256`` (``00001.jpg`` ... ``30000.jpg``).
        out: Output root (the recipe's ``data_root``, ``data/celeba-hq-dataset``).
        flists: Folder with LaMa's ``train_shuffled.flist`` and ``val_shuffled.flist``.
        seed: Seed of the validation draw.
        val_count: Validation images (official 2,000).
        workers: Worker processes.
        link: ``'copy'``, ``'hardlink'`` or ``'symlink'``.
        check: Decode every image first and leave broken ones out.
        write_eval_masks: The evaluation-mask writer, or None to skip that step.
    """
    guard_output(out, [src, flists])
    renamed = {}
    for path in list_images(str(src)):
        name = _renamed_index(path)
        if name is not None:
            renamed[name] = path
    split = celebahq_split(_read_flist(flists / 'train_shuffled.flist'),
                           _read_flist(flists / 'val_shuffled.flist'), seed, val_count)
    summary = Summary()
    jobs = []
    for folder, names in split.items():
        for name in names:
            if name not in renamed:
                summary.problems.append(Finding(str(src / name), 'unpaired',
                                                'listed by LaMa but not in the download'))
                continue
            jobs.append(Job((str(out / folder / name),), renamed[name],
                            ((renamed[name],), link, check)))
    run_jobs(jobs, copy_job, summary, count_by_folder(str(out)), workers, desc='celeba-hq')
    lists = {'train_256': 'train_shuffled.flist', 'val_source_256': 'val_shuffled.flist',
             'visual_test_source_256': 'visual_test_shuffled.flist'}
    for folder, flist in lists.items():
        write_output(str(out / flist), ''.join(f'{n}\n' for n in split[folder]).encode())
    _write_masks(out, CELEBAHQ_EVAL_MASKS, write_eval_masks, summary)
    summary.notes.append(f'the recipe reads data/celeba-hq-dataset (celebahq_inpaint.py: '
                         f'data_root): point it at {out}')
    return summary


def sample_names(paths: Sequence[str], count: int, seed: int) -> List[str]:
    """``count`` of ``paths`` drawn without replacement by a seeded shuffle of the sorted list."""
    if count > len(paths):
        raise PrepareError(f'cannot sample {count} images out of {len(paths)}')
    shuffled = sorted(paths)
    random.Random(seed).shuffle(shuffled)
    return shuffled[:count]


def prepare_places(train: Path, val_large: Path, test_large: Path, out: Path, seed: int = 0,
                   val_count: int = 2000, visual_count: int = 100, eval_count: int = 30000,
                   workers: int = 1, link: str = 'copy', check: bool = True,
                   write_eval_masks: Optional[EvalMaskWriter] = None) -> Summary:
    """Write LaMa's Places2-Standard layout (see the module docstring).

    Args:
        train: ``train_large_places365standard`` (``data_large/a/abbey/...``).
        val_large, test_large: The ``val_large`` and ``test_large`` images.
        out: Output root (the recipe's ``data_root``, ``data/places_standard_dataset``).
        seed: Seed of the samples.
        val_count, visual_count, eval_count: Sample sizes (official 2,000 / 100 / 30,000).
        workers: Worker processes.
        link: ``'copy'``, ``'hardlink'`` or ``'symlink'``.
        check: Decode every image first and leave broken ones out.
        write_eval_masks: The evaluation-mask writer, or None to skip that step.
    """
    guard_output(out, [train, val_large, test_large])
    train_files = list_images(str(train), recursive=True)
    if not train_files:
        raise PrepareError(f'no training images found under {train}')
    val_files = list_images(str(val_large), recursive=True)
    test_files = list_images(str(test_large), recursive=True)
    # LaMa samples the evaluation images and the visual-check images from val_large independently
    picks = {'val_hires': sample_names(test_files, val_count, seed),
             'visual_test_hires': sample_names(val_files, visual_count, seed + 1),
             'evaluation/hires': sample_names(val_files, eval_count, seed + 2)}
    jobs = [Job((str(out / 'train' / Path(p).relative_to(train)),), p, ((p,), link, check))
            for p in train_files]
    for folder, paths in picks.items():
        jobs += [Job((str(out / folder / Path(p).name),), p, ((p,), link, check))
                 for p in paths]
    summary = Summary()
    run_jobs(jobs, copy_job, summary, lambda p: _top_folder(out, p), workers, desc='places')
    _write_masks(out, PLACES_EVAL_MASKS, write_eval_masks, summary)
    summary.notes.append(f'the recipe reads data/places_standard_dataset (places_inpaint.py: '
                         f'data_root): point it at {out}')
    return summary


def _top_folder(out: Path, path: str) -> str:
    """Count Places outputs per top folder (``train`` holds a tree of scene folders)."""
    parts = Path(path).relative_to(out).parts
    return parts[0] if parts[0] == 'train' else str(Path(*parts[:-1]))
