"""Check every image a config's dataloaders will read, before a run (``tools/check_data.py``).

For each dataset of the chosen dataloaders (``train_dataloader``, ``val_dataloader``, optionally
``test_dataloader``; lists and ``RepeatDataset`` / ``ConcatDataset`` wrappers included), the
dataset lists its samples exactly as training will (MMagic's ``BasicImageDataset`` built with
an empty pipeline: same ``data_root``, ``data_prefix``, ``ann_file``, ``filename_tmpl``,
``search_key``, ``recursive``). Then, with :mod:`diffir_mm.datasets.file_checks`:

* every file is decoded once, in parallel: unreadable files and non-RGB surprises (a mask is
  grayscale by design and is not reported);
* paired datasets (``img`` + ``gt``): a sample whose partner file is missing, a file of a paired
  folder that no sample uses (a GT without its LQ), and pairs whose sizes the recipe cannot use:
  GT = LQ x the ``scale`` of the pipeline's ``SetValues`` (else the model's; after ``ModCrop``
  when the pipeline has one), GT at least ``PairedRandomCrop``'s ``gt_patch_size``;
* inpainting mask files must have the size of their image.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Sequence, Tuple

from diffir_mm.datasets.file_checks import (Finding, ImageInfo, PairRule, check_files,
                                            list_images, pair_problem)

__all__ = ['DatasetSamples', 'iter_datasets', 'pair_rule', 'dataset_samples', 'check_config_data',
           'describe']

#: Sample keys that hold an image path, and how messages name them.
_IMAGE_KEYS = ('img', 'gt', 'mask')
_ROLES = {'img': 'LQ', 'gt': 'GT', 'mask': 'mask'}


def _role(key: str) -> str:
    return _ROLES.get(key, key)


@dataclass
class DatasetSamples:
    """The files one dataset of a config reads.

    Attributes:
        key: Where the dataset sits in the config (``train_dataloader.dataset``).
        samples: One ``{'img': path, 'gt': path, 'mask': path}`` dict per sample (keys as the
            dataset's ``data_prefix``).
        folders: ``{key: folder}`` searched by the dataset.
        rule: What a pair must satisfy (paired datasets).
        mod_crop: The pipeline trims the GT to a multiple of the scale first.
    """

    key: str
    samples: List[Dict[str, str]]
    folders: Dict[str, str] = field(default_factory=dict)
    rule: PairRule = field(default_factory=PairRule)
    mod_crop: bool = False


def iter_datasets(node: Any, key: str) -> Iterator[Tuple[str, dict]]:
    """``(dotted key, dataset config)`` of every image dataset under a dataloader config."""
    if isinstance(node, (list, tuple)):
        for i, item in enumerate(node):
            yield from iter_datasets(item, f'{key}.{i}')
        return
    if not isinstance(node, dict):
        return
    if 'data_prefix' in node or 'ann_file' in node:
        yield key, node
        return
    for child in ('dataset', 'datasets'):
        if child in node:
            yield from iter_datasets(node[child], f'{key}.{child}')


def pair_rule(pipeline: Sequence[dict], scale: int = 1) -> Tuple[PairRule, bool]:
    """``(rule, mod_crop)`` read from a pipeline config (``SetValues``, ``PairedRandomCrop``).

    ``scale`` is the model's, used when no ``SetValues`` step names one (evaluation pipelines).
    """
    patch, mod_crop = 0, False
    for step in pipeline or ():
        kind = step.get('type') if isinstance(step, dict) else None
        if kind == 'SetValues':
            scale = int(step.get('dictionary', {}).get('scale', scale))
        elif kind == 'PairedRandomCrop':
            patch = int(step.get('gt_patch_size', 0))
        elif kind == 'ModCrop':
            mod_crop = True
    return PairRule(scale=scale, min_gt_size=patch), mod_crop


def dataset_samples(dataset: dict, key: str, scale: int = 1) -> DatasetSamples:
    """List the samples of one dataset config as its dataset class does (``scale``: the
    model's GT / LQ factor)."""
    from mmagic.registry import DATASETS

    cfg = dict(dataset)
    pipeline = cfg.get('pipeline') or []
    cfg.update(pipeline=[], lazy_init=True)
    built = DATASETS.build(cfg)
    data_list = built.load_data_list()
    prefixes = dict(getattr(built, 'data_prefix', {}) or {})
    samples = [{k: d[f'{k}_path'] for k in prefixes if f'{k}_path' in d} for d in data_list]
    rule, mod_crop = pair_rule(pipeline, scale)
    return DatasetSamples(key, samples, prefixes, rule, mod_crop)


def _gt_for_rule(info: ImageInfo, rule: PairRule, mod_crop: bool) -> ImageInfo:
    if not mod_crop or rule.scale <= 1:
        return info
    return ImageInfo(info.height - info.height % rule.scale, info.width - info.width % rule.scale,
                     info.channels, info.dtype)


def _orphans(found: DatasetSamples) -> List[Finding]:
    """Files of a paired folder that no sample reads (e.g. a GT without its LQ)."""
    keys = [k for k in found.folders if k != 'mask']
    if len(keys) < 2:
        return []
    findings = []
    for key in keys:
        other = next(k for k in keys if k != key)
        used = {os.path.normpath(s[key]) for s in found.samples if key in s}
        folder = found.folders[key]
        for path in list_images(folder) if os.path.isdir(folder) else []:
            if os.path.normpath(path) not in used:
                findings.append(Finding(path, 'unpaired', f'{_role(key)} without its '
                                        f'{_role(other)} (no sample reads it)'))
    return findings


def _sample_findings(found: DatasetSamples, infos: Dict[str, ImageInfo]) -> List[Finding]:
    findings = []
    for sample in found.samples:
        missing = [k for k, p in sample.items() if not os.path.exists(p)]
        if missing:
            present = [k for k in sample if k not in missing]
            for key in missing:
                owner = sample[present[0]] if present else sample[key]
                what = f'{_role(present[0])} without its {_role(key)}' if present else 'missing'
                findings.append(Finding(owner, 'unpaired', f'{what} ({sample[key]} not found)'))
            continue
        img, gt, mask = (infos.get(sample.get(k, '')) for k in _IMAGE_KEYS)
        if img is not None and gt is not None:
            problem = pair_problem(img, _gt_for_rule(gt, found.rule, found.mod_crop), found.rule)
            if problem:
                findings.append(Finding(sample['gt'], 'size', problem))
        image = gt or img
        if mask is not None and image is not None and \
                (mask.height, mask.width) != (image.height, image.width):
            findings.append(Finding(sample['mask'], 'size', f'mask is {mask.width}x'
                                    f'{mask.height}, its image {image.width}x{image.height}'))
    return findings


def check_config_data(cfg: Any, loaders: Sequence[str], workers: int = 1,
                      progress: bool = True) -> Tuple[List[DatasetSamples], List[Finding]]:
    """Check every file the datasets of ``loaders`` read (see the module docstring).

    Args:
        cfg: The loaded config (mmengine ``Config`` or a dict).
        loaders: Dataloader keys, e.g. ``['train_dataloader', 'val_dataloader']``.
        workers: Worker processes for decoding.
        progress: Show a progress bar.

    Returns:
        ``(datasets, findings)``: what was listed, and one finding per problem (each file once).
    """
    generator = (cfg.get('model') or {}).get('generator') or {}
    scale = int(generator.get('scale', 1))
    datasets = []
    for loader in loaders:
        node = cfg.get(loader)
        if node:
            datasets += [dataset_samples(d, k, scale) for k, d in iter_datasets(node, loader)]
    masks = {s['mask'] for d in datasets for s in d.samples if 'mask' in s}
    paths = sorted({p for d in datasets for s in d.samples for p in s.values()
                    if os.path.exists(p)})
    infos, file_findings = check_files(paths, workers=workers,
                                       desc='checking' if progress else '')
    findings = [f for f in file_findings if not (f.kind == 'non-rgb' and f.path in masks)]
    seen = {(f.path, f.detail) for f in findings}
    for found in datasets:
        for finding in _orphans(found) + _sample_findings(found, infos):
            if (finding.path, finding.detail) not in seen:
                seen.add((finding.path, finding.detail))
                findings.append(finding)
    return datasets, findings


def describe(datasets: Sequence[DatasetSamples]) -> List[str]:
    """One line per dataset: key, samples, folders."""
    lines = []
    for found in datasets:
        folders = ', '.join(f'{k}={Path(v)}' for k, v in found.folders.items())
        lines.append(f'{found.key}: {len(found.samples)} samples ({folders})')
    return lines

