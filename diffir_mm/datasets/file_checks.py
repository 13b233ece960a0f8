"""Is every image of a dataset usable? Decodable files, 8-bit RGB, complete and compatible pairs.

One checker for everything that reads a user's folders before (or during) training:
``tools/check_data.py`` (the folders of a config), ``tools/prepare_data.py pairs / images`` (a
user's own folders) and the training loaders (a sample that cannot be read is named, not a
traceback).

* :func:`decode_problem` -- can this file be decoded, and if not, why (one short line)? Decoding
  is :func:`diffir_mm.inference.io.decode_file`, the one decision the CLI makes too; a JPEG
  without its end-of-image marker (a truncated download, which libjpeg decodes with grey rows
  and a warning) also counts as broken.
* :func:`probe_image` -- that, plus size, channels and sample type (:class:`ImageInfo`), and
  :func:`non_rgb_reason` says what is not plain 8-bit RGB (grayscale, alpha, 16-bit): the
  training loaders still read such files (``color_type='color'`` drops alpha and depth), but a
  grayscale photo among colour ones is usually a surprise worth seeing.
* :func:`match_pairs` pairs an LQ and a GT folder by file stem (MMagic's
  ``BasicImageDataset`` pairs by name) and :func:`pair_problem` says whether a pair fits a recipe
  (:class:`PairRule`: GT = LQ x scale, GT at least the training patch).
* :func:`check_files` / :func:`check_pairs` run all of it in parallel and return
  :class:`Finding` records, one per problem.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from diffir_mm.inference.io import ImageIOError, decode_file
from diffir_mm.utils.parallel import map_parallel

__all__ = ['IMAGE_SUFFIXES', 'ImageInfo', 'Finding', 'PairRule', 'decode_problem',
           'probe_image', 'non_rgb_reason', 'pair_problem', 'list_images', 'match_pairs',
           'check_files', 'check_pairs', 'format_findings']

#: File suffixes MMagic's ``BasicImageDataset`` lists (compared case-insensitively).
IMAGE_SUFFIXES = ('.jpg', '.jpeg', '.png', '.ppm', '.bmp', '.tif', '.tiff')
_JPEG_SUFFIXES = ('.jpg', '.jpeg')
#: A JPEG must end with its EOI marker; some writers append a few bytes of padding after it.
_JPEG_TAIL = 1024


@dataclass(frozen=True)
class ImageInfo:
    """What a decodable image holds.

    Attributes:
        height, width: Size in pixels.
        channels: 1 (grayscale), 2 (gray + alpha), 3 (colour) or 4 (colour + alpha).
        dtype: Sample type name (``'uint8'``, ``'uint16'``, ``'float32'``).
    """

    height: int
    width: int
    channels: int
    dtype: str


@dataclass(frozen=True)
class Finding:
    """One problem of one file (or pair).

    Attributes:
        path: The file concerned.
        kind: ``'unreadable'``, ``'non-rgb'``, ``'unpaired'`` or ``'size'``.
        detail: One line saying what is wrong.
    """

    path: str
    kind: str
    detail: str

    def line(self) -> str:
        """``path: detail``, how the tools print it."""
        return f'{self.path}: {self.detail}'


@dataclass(frozen=True)
class PairRule:
    """What a recipe needs of an (LQ, GT) pair.

    Attributes:
        scale: GT size = LQ size x scale (1 for deblurring).
        min_gt_size: The GT's shorter side must reach the training patch (``PairedRandomCrop``'s
            ``gt_patch_size``); 0 for no minimum.
    """

    scale: int = 1
    min_gt_size: int = 0


def _truncated_jpeg(path: str) -> bool:
    """A JPEG whose last bytes hold no end-of-image marker (``FF D9``)."""
    with open(path, 'rb') as fh:
        size = fh.seek(0, os.SEEK_END)
        fh.seek(max(0, size - _JPEG_TAIL))
        return b'\xff\xd9' not in fh.read()


def probe_image(path: str) -> Tuple[Optional[ImageInfo], Optional[str]]:
    """Decode ``path`` and describe it.

    Returns:
        ``(info, None)`` for a usable image, ``(None, reason)`` otherwise.
    """
    path = os.fspath(path)
    try:
        img = decode_file(path)
        if path.lower().endswith(_JPEG_SUFFIXES) and _truncated_jpeg(path):
            return None, 'truncated JPEG (no end-of-image marker)'
    except ImageIOError as err:
        return None, str(err)
    except OSError as err:
        return None, f'cannot read file: {err.strerror or err}'
    channels = 1 if img.ndim == 2 else int(img.shape[2])
    return ImageInfo(int(img.shape[0]), int(img.shape[1]), channels, str(img.dtype)), None


def decode_problem(path: str) -> Optional[str]:
    """Why ``path`` cannot be used as an image (one line), or None when it decodes.

    For example ``'no such file'``, ``'empty file'``, ``'cannot decode image (corrupt file or
    unsupported format)'``, ``'truncated JPEG (no end-of-image marker)'``.
    """
    return probe_image(path)[1]


def non_rgb_reason(info: ImageInfo) -> Optional[str]:
    """What makes a decodable image other than plain 8-bit RGB, or None."""
    reasons = []
    if info.channels in (1, 2):
        reasons.append('grayscale')
    if info.channels in (2, 4):
        reasons.append('alpha channel (dropped when training)')
    if info.dtype != 'uint8':
        reasons.append(f'{info.dtype} samples (read as 8-bit when training)')
    return ', '.join(reasons) or None


def pair_problem(lq: ImageInfo, gt: ImageInfo, rule: PairRule) -> Optional[str]:
    """Why an (LQ, GT) pair does not fit ``rule``, or None."""
    want = (lq.height * rule.scale, lq.width * rule.scale)
    if (gt.height, gt.width) != want:
        what = 'the LQ size' if rule.scale == 1 else f'{rule.scale}x the LQ size'
        return (f'GT is {gt.width}x{gt.height}, LQ is {lq.width}x{lq.height}: the recipe needs '
                f'a {want[1]}x{want[0]} GT ({what})')
    if min(gt.height, gt.width) < rule.min_gt_size:
        return (f'GT is {gt.width}x{gt.height}, smaller than the training patch '
                f'{rule.min_gt_size}x{rule.min_gt_size}')
    return None


def list_images(folder: str, recursive: bool = False) -> List[str]:
    """Image files of ``folder`` (sorted; by suffix, as MMagic's dataset lists them); none when
    the folder does not exist."""
    root = Path(folder)
    if not root.is_dir():
        return []
    found = root.rglob('*') if recursive else root.iterdir()
    return sorted(str(p) for p in found
                  if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith('.')
                  and p.is_file())


def match_pairs(lq_files: Iterable[str], gt_files: Iterable[str]
                ) -> Tuple[List[Tuple[str, str]], List[str], List[str]]:
    """Pair two file lists by stem (the name without its suffix).

    Returns:
        ``(pairs, gt_only, lq_only)``: the ``(lq, gt)`` pairs sorted by GT path, the GTs
        without an LQ and the LQs without a GT.
    """
    lq_by_stem: Dict[str, str] = {Path(p).stem: p for p in lq_files}
    gt_by_stem: Dict[str, str] = {Path(p).stem: p for p in gt_files}
    pairs = sorted(((lq_by_stem[s], gt) for s, gt in gt_by_stem.items() if s in lq_by_stem),
                   key=lambda pair: pair[1])
    gt_only = sorted(gt for s, gt in gt_by_stem.items() if s not in lq_by_stem)
    lq_only = sorted(lq for s, lq in lq_by_stem.items() if s not in gt_by_stem)
    return pairs, gt_only, lq_only


def _file_findings(path: str, info: Optional[ImageInfo], reason: Optional[str]) -> List[Finding]:
    if info is None:
        return [Finding(path, 'unreadable', reason or 'cannot decode')]
    non_rgb = non_rgb_reason(info)
    return [Finding(path, 'non-rgb', non_rgb)] if non_rgb else []


def check_files(paths: Sequence[str], workers: int = 1, desc: str = ''
                ) -> Tuple[Dict[str, ImageInfo], List[Finding]]:
    """Decode every file of ``paths`` in parallel.

    Returns:
        ``(infos, findings)``: the :class:`ImageInfo` of every decodable file and one
        :class:`Finding` per unreadable or non-RGB file.
    """
    probes = map_parallel(probe_image, list(paths), workers=workers, desc=desc)
    infos, findings = {}, []
    for path, (info, reason) in zip(paths, probes):
        if info is not None:
            infos[path] = info
        findings.extend(_file_findings(path, info, reason))
    return infos, findings


def check_pairs(lq_files: Sequence[str], gt_files: Sequence[str], rule: PairRule,
                workers: int = 1, desc: str = ''
                ) -> Tuple[List[Tuple[str, str]], List[Finding]]:
    """Check two folders' files as pairs for ``rule``.

    Returns:
        ``(good_pairs, findings)``: the ``(lq, gt)`` pairs with no problem (non-RGB files
        included, they are reported but load), and every finding: unreadable and non-RGB files,
        files without a partner, pairs whose sizes the recipe cannot crop.
    """
    pairs, gt_only, lq_only = match_pairs(lq_files, gt_files)
    findings = [Finding(p, 'unpaired', 'GT without its LQ (no LQ file with this name)')
                for p in gt_only]
    findings += [Finding(p, 'unpaired', 'LQ without its GT (no GT file with this name)')
                 for p in lq_only]
    paired = [path for pair in pairs for path in pair]
    infos, file_findings = check_files(paired, workers=workers, desc=desc)
    findings += file_findings
    good = []
    for lq, gt in pairs:
        if lq not in infos or gt not in infos:
            continue
        problem = pair_problem(infos[lq], infos[gt], rule)
        if problem:
            findings.append(Finding(gt, 'size', problem))
        else:
            good.append((lq, gt))
    return good, findings


def format_findings(findings: Sequence[Finding]) -> List[str]:
    """The findings grouped by kind, one line each, for printing."""
    titles = {'unreadable': 'unreadable', 'non-rgb': 'not 8-bit RGB',
              'unpaired': 'without a partner', 'size': 'sizes the recipe cannot use'}
    lines = []
    for kind, title in titles.items():
        group = [f for f in findings if f.kind == kind]
        if group:
            lines.append(f'{len(group)} {title}:')
            lines.extend(f'  {f.line()}' for f in sorted(group, key=lambda f: f.path))
    return lines

