"""Training images that cannot be read are named and skipped, not a 51-line traceback.

MMagic's ``LoadImageFromFile`` hands the bytes of a truncated PNG, an empty file or a text file
named ``.png`` to ``mmcv.imfrombytes``, which ends the run in ``cv2.error ... !_src.empty() in
function 'cvtColor'`` deep in a dataloader worker, naming no file. :class:`CheckedLoadImageFromFile`
is that transform (same arguments) for the *training* pipelines of the dataset bases:

* a file that fails to load and that :func:`~diffir_mm.datasets.file_checks.decode_problem`
  (the one decision of ``tools/check_data.py`` and the CLI) confirms is unreadable is named in
  one warning line with the reason (once per file and loading process, which does not read it
  again) and skipped: the
  transform returns None and mmengine's dataset draws another sample, as it does for any
  transform that drops a sample; the skips are counted;
* when more than ``max_bad_share`` of the images this process loaded were unreadable (judged
  once it loaded ``min_loads`` images), training stops with one line;
* ``on_bad_file='error'`` (strict) stops at the first unreadable file, naming it.

A load that fails although the file decodes (a wrong ``color_type``, a remote backend) keeps
its original error. Evaluation pipelines keep MMagic's transform: a test set is never
silently shortened. The stop is a :class:`~diffir_mm.engine.errors.TrainingStopped`, one line
even when a dataloader worker raises it.
"""
from __future__ import annotations

import logging
from typing import Any, Dict, Optional

import numpy as np
from mmagic.datasets.transforms import LoadImageFromFile
from mmagic.registry import TRANSFORMS
from mmengine.logging import print_log

from diffir_mm.datasets.file_checks import decode_problem
from diffir_mm.engine.errors import TrainingStopped

__all__ = ['ON_BAD_FILE', 'CheckedLoadImageFromFile']

#: ``on_bad_file`` values: skip the sample with a warning, or stop training.
ON_BAD_FILE = ('skip', 'error')


class _Unreadable(Exception):
    """This sample is skipped (internal: turned into ``None`` by :meth:`transform`)."""


@TRANSFORMS.register_module()
class CheckedLoadImageFromFile(LoadImageFromFile):
    """MMagic's ``LoadImageFromFile`` that names and skips unreadable training images.

    Args:
        key, color_type, channel_order, imdecode_backend, ...: As MMagic's transform.
        on_bad_file: ``'skip'`` (warn, count, draw another sample) or ``'error'`` (stop at the
            first unreadable file).
        max_bad_share: Stop when more than this share of the images loaded by this process
            were unreadable.
        min_loads: Judge ``max_bad_share`` only once this many images were loaded.
    """

    def __init__(self, key: str, on_bad_file: str = 'skip', max_bad_share: float = 0.01,
                 min_loads: int = 100, **kwargs: Any) -> None:
        super().__init__(key=key, **kwargs)
        if on_bad_file not in ON_BAD_FILE:
            raise ValueError(f'on_bad_file must be one of {ON_BAD_FILE}, got {on_bad_file!r}')
        if not 0 <= max_bad_share <= 1:
            raise ValueError(f'max_bad_share must be in [0, 1], got {max_bad_share}')
        self.on_bad_file = on_bad_file
        self.max_bad_share = float(max_bad_share)
        self.min_loads = int(min_loads)
        self.loads = 0
        self.bad_loads = 0
        self._named: Dict[str, str] = {}  # path -> problem

    def transform(self, results: Dict[str, Any]) -> Optional[Dict[str, Any]]:
        """MMagic's transform; None (skip the sample) when a file is unreadable."""
        try:
            return super().transform(results)
        except _Unreadable:
            return None

    def _load_image(self, filename: str) -> np.ndarray:
        self.loads += 1
        if filename in self._named:  # known to be unreadable: not decoded (and warned) again
            self._unreadable(filename, self._named[filename])
        try:
            img = super()._load_image(filename)
        except Exception:
            problem = decode_problem(filename) if self.backend_args is None else None
            if problem is None:
                raise
            self._unreadable(filename, problem)
        if img is None:  # mmcv returns None for undecodable bytes in BGR order
            self._unreadable(filename, decode_problem(filename) or 'cannot decode image')
        return img

    def _unreadable(self, path: str, problem: str) -> None:
        self.bad_loads += 1
        if self.on_bad_file == 'error':
            raise TrainingStopped(f'unreadable training image {path}: {problem} '
                                  "(on_bad_file='error' stops at the first)")
        if path not in self._named:
            self._named[path] = problem
            print_log(f'skipped an unreadable training image: {path}: {problem} '
                      f'({len(self._named)} unreadable file(s), {self.bad_loads} skip(s) so '
                      'far)', logger='current', level=logging.WARNING)
        if self.loads >= self.min_loads and self.bad_loads > self.max_bad_share * self.loads:
            raise TrainingStopped(
                f'{self.bad_loads} of the {self.loads} training images loaded were unreadable '
                f'({self.bad_loads / self.loads:.1%}, more than max_bad_share='
                f'{self.max_bad_share:g}), the last {path}: {problem}')
        raise _Unreadable(path)

    def __repr__(self) -> str:
        return (super().__repr__()[:-1] + f', on_bad_file={self.on_bad_file}, '
                f'max_bad_share={self.max_bad_share}, min_loads={self.min_loads})')
