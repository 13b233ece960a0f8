"""The models the app offers: named at launch, trained by ``make demo``, or uploaded in the page.

A :class:`ModelSource` holds ``diffir-restore``'s model arguments (``--checkpoint``, ``--config``,
``--task``, ``--scale``); :class:`ModelCache` turns it into a restorer with
:func:`diffir_mm.inference.loading.build_restorer`, the CLI's own function, so both load a model
identically.

Folders: an mmengine work dir (what ``tools/train.py`` writes: ``last_checkpoint`` naming the
newest checkpoint, the config dumped beside it) is its config + that checkpoint, so its data
preprocessor's mean/std apply as in training. ``make demo`` trains into
``demo_out/<task>/work_dirs/s2`` (see ``tools/demo.py``): :func:`find_demo_models` lists those,
so ``make app`` after ``make demo`` needs no arguments.
"""
from __future__ import annotations

import glob
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import List, Optional, Tuple

from diffir_mm.inference.restorer import Restorer

__all__ = ['ModelSource', 'ModelCache', 'work_dir_source', 'find_demo_models',
           'source_from_path']

#: Where ``tools/demo.py`` trains stage 2, below its ``--out-dir``.
DEMO_STAGE2 = os.path.join('work_dirs', 's2')


@dataclass(frozen=True)
class ModelSource:
    """A model as ``diffir-restore`` names it.

    Attributes:
        label: Shown in the page.
        checkpoint: ``--checkpoint``.
        config: ``--config`` (mmengine config of ``model.generator``), or None.
        task: ``--task`` (checked against the checkpoint), or None: read from it.
        scale: ``--scale``.
    """

    label: str
    checkpoint: Optional[str] = None
    config: Optional[str] = None
    task: Optional[str] = None
    scale: int = 4


def _newest_checkpoint(folder: str) -> Optional[str]:
    """The checkpoint ``last_checkpoint`` names (or the newest ``*.pth`` when it moved)."""
    marker = os.path.join(folder, 'last_checkpoint')
    if os.path.isfile(marker):
        with open(marker, encoding='utf-8') as fh:
            named = fh.read().strip()
        for path in (named, os.path.join(folder, os.path.basename(named))):
            if path and os.path.isfile(path):
                return path
    found = glob.glob(os.path.join(folder, '*.pth'))
    return max(found, key=os.path.getmtime) if found else None


def work_dir_source(folder: str, label: Optional[str] = None) -> Optional[ModelSource]:
    """The model of an mmengine work dir: its newest checkpoint and the config dumped beside it.

    Returns None when the folder holds no checkpoint.
    """
    checkpoint = _newest_checkpoint(folder)
    if checkpoint is None:
        return None
    configs = sorted(glob.glob(os.path.join(folder, '*.py')))
    config = configs[0] if len(configs) == 1 else None
    return ModelSource(label=label or os.path.basename(os.path.normpath(folder)),
                       checkpoint=checkpoint, config=config)


def find_demo_models(demo_dir: str = 'demo_out') -> List[ModelSource]:
    """The stage-2 models ``make demo`` trained in ``demo_dir`` (one per task), newest first."""
    found = []
    for task_dir in glob.glob(os.path.join(demo_dir, '*', '')):
        task = os.path.basename(os.path.normpath(task_dir))
        source = work_dir_source(os.path.join(task_dir, DEMO_STAGE2), label=f'demo: {task}')
        if source is not None:
            found.append(source)
    return sorted(found, key=lambda s: -os.path.getmtime(s.checkpoint))


def source_from_path(path: str, config: Optional[str] = None, task: Optional[str] = None,
                     scale: int = 4) -> List[ModelSource]:
    """The models a path names: a checkpoint file, a work dir, or a demo output folder.

    Raises:
        ValueError: the path holds no model (one-line message).
    """
    name = os.path.basename(os.path.normpath(path))
    if os.path.isfile(path):
        label = name if config is None else f'{name} + {os.path.basename(config)}'
        return [ModelSource(label, checkpoint=path, config=config, task=task, scale=scale)]
    if not os.path.isdir(path):
        raise ValueError(f'{path}: no such file or folder')
    if config is not None:
        raise ValueError(f'{path} is a folder: --config applies to a checkpoint file')
    source = work_dir_source(path)
    if source is not None:
        return [source]
    demo = find_demo_models(path)
    if demo:
        return demo
    raise ValueError(f'{path}: no checkpoint (last_checkpoint or *.pth) in this folder, nor '
                     f'demo models in {os.path.join(path, "<task>", DEMO_STAGE2)}')


class ModelCache:
    """Loaded restorers, the most recent ``per_device`` of each device.

    A restorer is built as ``diffir-restore`` builds it for the same options: model arguments,
    ``--device``, ``--precision`` and ``--tile``, the others at their defaults (the seed is given
    per call). Another precision or tile size loads the model again.

    Args:
        per_device: Restorers kept loaded on each device.
    """

    def __init__(self, per_device: int = 1) -> None:
        self.per_device = per_device
        self._loaded: 'OrderedDict[Tuple, Restorer]' = OrderedDict()
        self._lock = threading.Lock()

    def get(self, source: ModelSource, device: str, precision: str = 'auto',
            tile: int = 0) -> Restorer:
        """The restorer of ``source`` on ``device`` (loaded on first use)."""
        from diffir_mm.inference.loading import build_restorer
        key = (source, device, precision, tile or None)
        with self._lock:
            if key in self._loaded:
                self._loaded.move_to_end(key)
                return self._loaded[key]
        restorer = build_restorer(checkpoint=source.checkpoint, config=source.config,
                                  task=source.task, scale=source.scale, device=device,
                                  precision=precision, tile=tile or None)
        with self._lock:
            self._loaded[key] = restorer
            same_device = [k for k in self._loaded if k[1] == device]
            for old in same_device[:-self.per_device]:
                del self._loaded[old]
        return restorer
