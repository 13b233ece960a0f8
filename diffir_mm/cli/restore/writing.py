"""Where ``diffir-restore`` writes, and how: output names, never onto an input, atomic files.

* Names (:class:`OutputPlan`): ``OUT_DIR/<stem><suffix><ext>``, ``ext`` the input's unless
  ``--ext`` is given; the side-by-side comparison of ``--compare`` adds ``_compare`` to the stem.
* Nothing a user has is replaced: an output that names an input file (or a mask) is refused
  before the input is even read, as is a second input that would give an already planned output
  name; :func:`~diffir_mm.inference.io.write_image` checks the input again at write time.
* Encoding (:func:`write_restored`): the result goes back to its input's layout -- bit depth,
  grayscale, alpha -- as far as the format holds it, and is written atomically (a temporary file
  in the output folder, fsynced, then renamed: :mod:`diffir_mm.utils.atomic`), so a reader never
  sees a partial image. Another front end (``diffir-app``) that writes with this function gets
  files byte-identical to this command's.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Iterable, List, Optional

import numpy as np

from diffir_mm.inference.io import ImageRecord, same_path, side_by_side, write_image

from .discovery import path_key
from .errors import Reporter, SetupError, one_line

__all__ = ['OutputRefused', 'OutputPlan', 'prepare_output_dir', 'write_restored',
           'write_comparison', 'ResultWriter']


class OutputRefused(ValueError):
    """An output that would replace an input or another output (one-line message)."""


class OutputPlan:
    """Output names of one run, with the files they must never replace.

    Args:
        out_dir: The output folder.
        suffix: Appended to every output stem.
        ext: Output format (``'png'`` or ``'.png'``, any case); None keeps each input's.
        protect: Files no output may name: the inputs and masks.
    """

    def __init__(self, out_dir: str, suffix: str = '', ext: Optional[str] = None,
                 protect: Iterable[str] = ()) -> None:
        self.out_dir = out_dir
        self.suffix = suffix
        self.ext = '.' + ext.lstrip('.').lower() if ext else None
        self._protected = {path_key(p) for p in protect}
        self._claimed = {}

    def path_for(self, source: str, extra: str = '') -> str:
        """The output path of ``source`` (``extra``: a further stem suffix, e.g. ``_compare``)."""
        stem, ext = os.path.splitext(os.path.basename(source))
        return os.path.join(self.out_dir, f'{stem}{self.suffix}{extra}{self.ext or ext}')

    def is_protected(self, path: str) -> bool:
        """Whether ``path`` names one of the protected files."""
        return path_key(path) in self._protected

    def claim(self, source: str) -> str:
        """Reserve the output path of ``source`` and return it.

        Raises:
            OutputRefused: The path names an input file, or another input already claimed it.
        """
        out = self.path_for(source)
        if self.is_protected(out) or same_path(out, source):
            raise OutputRefused(f'output {out} is an input file; refusing to overwrite it (use '
                                'another --out-dir, --suffix or --ext)')
        key = os.path.normcase(os.path.abspath(out))
        if key in self._claimed:
            raise OutputRefused(f'output {out} would also be written for {self._claimed[key]}; '
                                'skipped (rename one of them or use --suffix)')
        self._claimed[key] = source
        return out


def prepare_output_dir(out_dir: str) -> None:
    """Create the output folder (and its parents) if needed.

    Raises:
        SetupError: It cannot be created.
    """
    try:
        os.makedirs(out_dir, exist_ok=True)
    except OSError as err:
        raise SetupError(f'cannot create {out_dir}: {err.strerror or err}') from None


def write_restored(path: str, restored: np.ndarray, record: ImageRecord,
                   protect: Iterable[str] = ()) -> List[str]:
    """Write a restored image as ``diffir-restore`` does: in ``record``'s layout, atomically.

    Args:
        path: Destination; its extension selects the format.
        restored: (H, W, 3) float RGB in [0, 1], as the Restorer returns it.
        record: The input's record (bit depth, grayscale, alpha).
        protect: Files that must not be replaced (the input, its mask).

    Returns:
        Remarks about lossy conversions (an alpha channel the format drops, say).

    Raises:
        ImageIOError: The path is protected, has no extension, or cannot be encoded or written.
    """
    notes: List[str] = []
    write_image(path, restored, record, protect=protect, notes=notes)
    return notes


def write_comparison(path: str, restored: np.ndarray, record: ImageRecord,
                     protect: Iterable[str] = ()) -> None:
    """Write ``input | restored`` side by side (the input enlarged to the result's height, no
    alpha), in ``record``'s bit depth and colour layout."""
    write_image(path, side_by_side(record.rgb, restored), dataclasses.replace(record, alpha=None),
                protect=protect)


class ResultWriter:
    """Writes each restored input (and its comparison) and reports the outcome.

    Args:
        plan: The run's output names.
        reporter: Receives the ``error:`` / ``note:`` lines and counts.
        compare: Also write the side-by-side comparison.
    """

    def __init__(self, plan: OutputPlan, reporter: Reporter, compare: bool = False) -> None:
        self.plan = plan
        self.reporter = reporter
        self.compare = compare

    def write(self, source: str, out: str, restored: np.ndarray, record: ImageRecord,
              protect: List[str]) -> None:
        """Write ``restored`` to ``out``; a failure is one ``error:`` line for ``source``.

        Args:
            source: The input path (named in the messages).
            out: Its output path (:meth:`OutputPlan.claim`).
            restored: The result.
            record: The input's record.
            protect: Files this write must not replace (the input, its mask).
        """
        try:
            notes = write_restored(out, restored, record, protect)
        except Exception as err:  # noqa: BLE001 - one bad file must not stop the run
            self.reporter.error(f'cannot write {out}: {one_line(err)}', source)
            return
        for note in notes:
            self.reporter.note(source, note)
        self.reporter.restored()
        if not self.compare:
            return
        path = self.plan.path_for(source, '_compare')
        try:
            if self.plan.is_protected(path):
                raise OutputRefused('the comparison path is an input file')
            write_comparison(path, restored, record, protect)
        except Exception as err:  # noqa: BLE001
            self.reporter.error(f'cannot write {path}: {one_line(err)}', source)
