"""What every ``tools/prepare_data.py`` layout shares: safe outputs, resumable jobs, a summary.

* :func:`guard_output` refuses an output folder that is, contains or lies inside an input: a
  layout never writes where it reads, so nothing a user has is overwritten.
* A :class:`Job` names the files one unit of work writes (a copy, the crops of one photo);
  :func:`run_jobs` skips the jobs whose outputs all exist and runs the others in parallel. Every
  file is written atomically (:func:`diffir_mm.utils.atomic.write_bytes_atomic`: a temporary
  file in the same folder, fsynced, renamed), so an existing output is a complete one and an
  interrupted run resumes where it stopped.
* :class:`Summary` counts what was written / kept per folder and lists the inputs left out.
"""
from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from diffir_mm.datasets.file_checks import Finding, decode_problem, format_findings
from diffir_mm.inference.io import ImageIOError, decode_file, encode_image
from diffir_mm.utils.atomic import write_bytes_atomic
from diffir_mm.utils.config_errors import UserConfigError
from diffir_mm.utils.parallel import map_parallel

__all__ = ['PrepareError', 'OutputError', 'Job', 'Summary', 'guard_output', 'run_jobs',
           'copy_file', 'copy_job', 'write_output', 'write_array', 'read_bgr',
           'remove_stale_temporaries', 'count_by_folder', 'stems', 'PNG_PARAMS']

#: PNG compression of written crops (the official ``extract_subimages.py`` default, 3).
PNG_PARAMS = (cv2.IMWRITE_PNG_COMPRESSION, 3)


class PrepareError(UserConfigError):
    """A problem with the inputs or the output folder (the tools print it as one line)."""


class OutputError(PrepareError):
    """An output file cannot be written (disk full, permissions): the run stops."""


@dataclass(frozen=True)
class Job:
    """One unit of work: the files it writes and what it needs to write them.

    Attributes:
        outputs: Every file the job writes (it is skipped when all exist).
        source: The input file(s), for messages.
        params: Whatever the worker function needs (picklable).
    """

    outputs: Tuple[str, ...]
    source: str
    params: Tuple[Any, ...] = ()

    def complete(self) -> bool:
        """Whether every output already exists (atomic writes: existing = complete)."""
        return all(os.path.exists(p) for p in self.outputs)


@dataclass
class Summary:
    """What a layout wrote, kept from an earlier run and left out."""

    written: Counter = field(default_factory=Counter)
    kept: Counter = field(default_factory=Counter)
    problems: List[Finding] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)

    def add(self, folder: str, written: int, kept: int = 0) -> None:
        """Count files of ``folder``."""
        self.written[folder] += written
        self.kept[folder] += kept

    def lines(self, out: str) -> List[str]:
        """The summary printed at the end of a run."""
        lines = [f'wrote under {out}:']
        for folder in sorted(set(self.written) | set(self.kept)):
            kept = f' ({self.kept[folder]} already there)' if self.kept[folder] else ''
            lines.append(f'  {folder}: {self.written[folder] + self.kept[folder]} files{kept}')
        if self.problems:
            lines.append(f'left out {len(self.problems)} input(s):')
            lines.extend('  ' + line for line in format_findings(self.problems))
        lines.extend(self.notes)
        return lines


def _resolved(path: Path) -> Path:
    return Path(os.path.realpath(os.fspath(path)))


def guard_output(out: Path, inputs: Sequence[Path]) -> None:
    """Refuse an output folder that equals, contains or lies inside one of ``inputs``.

    Raises:
        PrepareError: With the two folders named.
    """
    target = _resolved(out)
    for folder in inputs:
        source = _resolved(folder)
        if target == source or source in target.parents or target in source.parents:
            raise PrepareError(f'the output folder {out} overlaps the input folder {folder}: '
                               'choose an output folder outside the inputs (inputs are never '
                               'written to)')


def run_jobs(jobs: Sequence[Job], worker: Callable[[Job], Optional[str]], summary: Summary,
             folder_of: Callable[[str], str], workers: int = 1, desc: str = '') -> None:
    """Run the incomplete ``jobs`` in parallel and count their outputs into ``summary``.

    Args:
        jobs: All jobs of a step (complete ones are skipped and counted as kept).
        worker: Picklable function writing a job's outputs; returns None or, when the source
            cannot be used, the reason (the job is then listed as a problem).
        summary: Counts and problems are added here.
        folder_of: Output path -> the folder name it is counted under.
        workers: Worker processes.
        desc: Progress-bar label.
    """
    remove_stale_temporaries(sorted({os.path.dirname(p) for job in jobs for p in job.outputs}))
    complete = [job.complete() for job in jobs]
    pending = [job for job, done in zip(jobs, complete) if not done]
    for job, done in zip(jobs, complete):
        if done:
            for path in job.outputs:
                summary.add(folder_of(path), 0, 1)
    results = map_parallel(worker, pending, workers=workers, desc=desc, unit='job')
    for job, problem in zip(pending, results):
        if problem:
            summary.problems.append(Finding(job.source, 'unreadable', problem))
            continue
        for path in job.outputs:
            summary.add(folder_of(path), 1)


def read_bgr(path: str) -> np.ndarray:
    """Decode ``path`` unchanged (depth and channels kept); :class:`ImageIOError` if it can't."""
    return decode_file(path)


def write_output(path: str, data: bytes) -> None:
    """Write ``data`` atomically; :class:`OutputError` when it cannot be written."""
    try:
        write_bytes_atomic(path, data)
    except OSError as err:
        raise OutputError(f'cannot write {path}: {err.strerror or err}') from None


def write_array(path: str, img: np.ndarray, params: Sequence[int] = ()) -> None:
    """Encode ``img`` (OpenCV layout) by ``path``'s suffix and write it atomically."""
    suffix = os.path.splitext(path)[1].lower()
    if suffix == '.png' and not params:
        params = PNG_PARAMS
    write_output(path, encode_image(np.ascontiguousarray(img), suffix, params))


def copy_file(src: str, dst: str, link: str = 'copy') -> None:
    """Copy (or link) ``src`` to ``dst`` atomically.

    Args:
        src, dst: Source and destination files.
        link: ``'copy'`` (the bytes, unchanged), ``'hardlink'`` or ``'symlink'`` (to the
            absolute source path).

    Raises:
        ImageIOError: The source cannot be read.
        OutputError: The destination cannot be written.
    """
    if link == 'copy':
        try:
            data = Path(src).read_bytes()
        except OSError as err:
            raise ImageIOError(f'cannot read {src}: {err.strerror or err}') from None
        write_output(dst, data)
        return
    if link not in ('hardlink', 'symlink'):
        raise ValueError(f'unknown link mode {link!r}')
    folder = os.path.dirname(os.path.abspath(dst))
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, f'.{os.path.basename(dst)}.{os.getpid()}.tmp')
    try:
        if link == 'hardlink':
            os.link(src, tmp)
        else:
            os.symlink(os.path.abspath(src), tmp)
        os.replace(tmp, dst)
    except OSError as err:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        raise OutputError(f'cannot {link} {src} to {dst}: {err.strerror or err}') from None


def copy_job(job: Job) -> Optional[str]:
    """Worker of copy jobs: ``params = (sources, link, check)``, one source per output.

    With ``check``, every source is decoded first (:func:`decode_problem`) and a job with a
    broken source writes nothing and returns the reason.
    """
    sources, link, check = job.params
    for src in sources:
        problem = decode_problem(src) if check else None
        if problem:
            return problem if len(sources) == 1 else f'{src}: {problem}'
    try:
        for src, dst in zip(sources, job.outputs):
            copy_file(src, dst, link)
    except ImageIOError as err:
        return str(err)
    return None


def remove_stale_temporaries(folders: Sequence[str]) -> int:
    """Delete the ``.<name>.<random>.tmp`` files an interrupted run left in ``folders``.

    Returns:
        How many were removed.
    """
    removed = 0
    for folder in folders:
        if not os.path.isdir(folder):
            continue
        for entry in os.scandir(folder):
            if entry.name.startswith('.') and entry.name.endswith('.tmp') and entry.is_file():
                os.unlink(entry.path)
                removed += 1
    return removed


def count_by_folder(root: str) -> Callable[[str], str]:
    """``folder_of`` for :func:`run_jobs`: the output's folder relative to ``root``."""
    def folder_of(path: str) -> str:
        return os.path.relpath(os.path.dirname(path), root)
    return folder_of


def stems(paths: Sequence[str]) -> Dict[str, str]:
    """``{stem: path}``; several files with one stem raise :class:`PrepareError`."""
    found: Dict[str, str] = {}
    for path in paths:
        stem = Path(path).stem
        if stem in found:
            raise PrepareError(f'two inputs have the name {stem!r}: {found[stem]} and {path}')
        found[stem] = path
    return found
