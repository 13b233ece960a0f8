"""The run of ``diffir-restore``: read each input, batch equal sizes, restore, hand to the writer.

Per input, in order: its output name is claimed (:class:`~.writing.OutputPlan`: never an input,
never twice), the image is read (its conversions become ``note:`` lines, as does padding to the
network's multiple), for inpainting its mask is read and checked against the image size; any
problem is one ``error:`` line for that input and the run goes on.

Batching (:class:`Batcher`): images of one size are restored together, ``--batch-size`` at a
time. Sizes interleave in a folder of photos, so the pending images are bounded: when more than
four batches' worth wait, the fullest size is restored early. A batch whose restoration fails is
retried image by image, so one bad image fails alone. Every image gets its own start vector seeded
with ``--seed``, so the batch composition does not change any result beyond float rounding.

Progress: a bar (tqdm, on a terminal, unless ``--no-progress``) counts images and shows the tile
count of tiled runs; messages are written through it.
"""
from __future__ import annotations

import os
import sys
import warnings
from dataclasses import dataclass
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from diffir_mm.inference.inpainting import holes_from_record
from diffir_mm.inference.io import ImageIOError, ImageRecord, read_image
from diffir_mm.inference.precision import PrecisionFallbackWarning
from diffir_mm.inference.restorer import Restorer

from .discovery import find_mask
from .errors import Reporter, one_line
from .writing import OutputPlan, OutputRefused, ResultWriter

try:
    from tqdm import tqdm
except ImportError:  # pragma: no cover - tqdm is in requirements/runtime.txt; no bar without it
    tqdm = None

__all__ = ['Item', 'read_mask', 'Batcher', 'Run']

#: At most this many batches' worth of images wait for images of their size.
PENDING_BATCHES = 4


@dataclass
class Item:
    """One input on its way through the run.

    Attributes:
        path: The input file.
        out: Its output path.
        record: The decoded image.
        mask: Inpainting: the (H, W) float32 hole mask (1 = hole).
        mask_path: Inpainting: the file ``mask`` was read from.
    """

    path: str
    out: str
    record: ImageRecord
    mask: Optional[np.ndarray] = None
    mask_path: Optional[str] = None

    @property
    def size(self) -> Tuple[int, int]:
        """(H, W) of the input."""
        return self.record.size


def read_mask(image: str, mask: Optional[str], mask_dir: Optional[str]
              ) -> Tuple[np.ndarray, str, Optional[str]]:
    """Read the inpainting mask of ``image`` (every non-zero value is a hole).

    Args:
        image: The image the mask belongs to.
        mask: One mask for every image (``--mask``), or None.
        mask_dir: Folder of masks named like the images (``--mask-dir``).

    Returns:
        The (H, W) float32 holes, the mask file, and a remark when the mask is not binary.

    Raises:
        ValueError: ``mask_dir`` has no mask for ``image``.
        ImageIOError: The mask cannot be read.
    """
    path = mask or find_mask(image, mask_dir)
    if path is None:
        stem = os.path.splitext(os.path.basename(image))[0]
        raise ValueError(f'no mask named {stem}.* in {mask_dir}')
    record = read_image(path)
    levels = np.unique(record.rgb)
    remark = None
    if levels.size > 2 or (levels.size == 2 and levels[0] != 0):
        remark = (f'mask {path} is not binary ({levels.size} levels): every non-zero value is a '
                  'hole (official rule)')
    return holes_from_record(record).astype('float32'), path, remark


class Batcher:
    """Groups items of one size into batches.

    :meth:`add` returns the batches that are ready: a size's batch when it holds ``batch_size``
    items, or -- when more than ``PENDING_BATCHES * batch_size`` items wait -- the fullest size's
    (the first-seen among equals). :meth:`drain` returns the rest, sizes in first-seen order.

    Args:
        batch_size: Items per batch (>= 1).
    """

    def __init__(self, batch_size: int) -> None:
        self.batch_size = batch_size
        self._pending: Dict[Tuple[int, int], List[Item]] = {}

    def add(self, item: Item) -> List[List[Item]]:
        """Queue ``item``; returns the batches to restore now."""
        bucket = self._pending.setdefault(item.size, [])
        bucket.append(item)
        if len(bucket) >= self.batch_size:
            return [self._pending.pop(item.size)]
        if sum(len(v) for v in self._pending.values()) > PENDING_BATCHES * self.batch_size:
            fullest = max(self._pending, key=lambda size: len(self._pending[size]))
            return [self._pending.pop(fullest)]
        return []

    def drain(self) -> Iterator[List[Item]]:
        """Yield every waiting batch."""
        while self._pending:
            yield self._pending.pop(next(iter(self._pending)))


class Run:
    """Restores a list of input files with one model.

    Args:
        restorer: The model (:func:`~.model.restorer_from_args`).
        plan: Output names and the files they must not replace.
        writer: Writes each result.
        reporter: Receives the messages and counts.
        batch_size: Images of one size per forward.
        mask: Inpainting: one mask for every image.
        mask_dir: Inpainting: folder of masks named like the images.
        progress: Show a progress bar (on a terminal).
    """

    def __init__(self, restorer: Restorer, plan: OutputPlan, writer: ResultWriter,
                 reporter: Reporter, batch_size: int = 1, mask: Optional[str] = None,
                 mask_dir: Optional[str] = None, progress: bool = True) -> None:
        self.restorer = restorer
        self.plan = plan
        self.writer = writer
        self.reporter = reporter
        self.batch_size = batch_size
        self.mask = mask
        self.mask_dir = mask_dir
        self.progress = progress

    # ---------------------------------------------------------------------------- progress bar
    def _advance(self, n: int = 1) -> None:
        if self.reporter.bar is not None:
            self.reporter.bar.update(n)

    def _tile_progress(self, done: int, total: int) -> None:
        if self.reporter.bar is not None and total > 1:
            self.reporter.bar.set_postfix_str(f'tiles {done}/{total}')

    def _fail(self, path: str, text: str) -> None:
        self.reporter.error(text, path)
        self._advance()

    # ---------------------------------------------------------------------------- the run
    def run(self, files: Sequence[str]) -> None:
        """Restore ``files`` (each problem reported, none raised)."""
        if tqdm is not None:
            self.reporter.bar = tqdm(total=len(files), unit='img', file=sys.stderr,
                                     dynamic_ncols=True,
                                     disable=None if self.progress else True)
        batcher = Batcher(self.batch_size)
        try:
            for path in files:
                item = self.prepare(path)
                if item is not None:
                    for batch in batcher.add(item):
                        self.restore(batch)
            for batch in batcher.drain():
                self.restore(batch)
        finally:
            if self.reporter.bar is not None:
                self.reporter.bar.close()
                self.reporter.bar = None

    def prepare(self, path: str) -> Optional[Item]:
        """Claim the output of ``path`` and read it (and its mask); None after an ``error:``."""
        try:
            out = self.plan.claim(path)
        except OutputRefused as err:
            self._fail(path, str(err))
            return None
        try:
            record = read_image(path)
        except ImageIOError as err:
            self._fail(path, one_line(err))
            return None
        for note in record.notes:
            self.reporter.note(path, note)
        self._note_padding(path, *record.size)
        item = Item(path=path, out=out, record=record)
        if self.restorer.task != 'inpaint':
            return item
        try:
            item.mask, item.mask_path, remark = read_mask(path, self.mask, self.mask_dir)
        except (ImageIOError, ValueError) as err:
            self._fail(path, f'mask: {one_line(err)}')
            return None
        if remark:
            self.reporter.note(path, remark)
        h, w = record.size
        if item.mask.shape != (h, w):
            self._fail(path, f'mask {item.mask_path} is {item.mask.shape[1]}x'
                             f'{item.mask.shape[0]}, the image {w}x{h}')
            return None
        return item

    def _note_padding(self, path: str, h: int, w: int) -> None:
        multiple = self.restorer.input_multiple
        if h < multiple or w < multiple:
            self.reporter.note(path, f'{w}x{h} is smaller than the network minimum '
                                     f'{multiple}x{multiple}; padded and cropped back')
        elif h % multiple or w % multiple:
            how = 'symmetric' if self.restorer.task == 'inpaint' else 'reflect'
            self.reporter.note(path, f'{w}x{h} is not a multiple of {multiple}; padded '
                                     f'({how}) and cropped back')

    def restore(self, items: List[Item]) -> None:
        """Restore one batch and write its results; a failed batch is retried image by image.

        fp32 recomputations of reduced-precision forwards are one ``warning:`` line per batch;
        other warnings pass through.
        """
        if not items:
            return
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter('always', PrecisionFallbackWarning)
            try:
                masks = [it.mask for it in items] if items[0].mask is not None else None
                outs = self.restorer.restore_batch([it.record.rgb for it in items], masks=masks,
                                                   progress=self._tile_progress)
            except Exception as err:  # noqa: BLE001 - one bad batch must not stop the run
                if len(items) > 1:
                    for it in items:
                        self.restore([it])
                    return
                self._fail(items[0].path, f'restoration failed: {type(err).__name__}: '
                                          f'{one_line(err)}')
                return
        reported = set()
        for w in caught:
            if not issubclass(w.category, PrecisionFallbackWarning):
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
            elif str(w.message) not in reported:  # once per batch, however many tiles fell back
                reported.add(str(w.message))
                self.reporter.warn(', '.join(it.path for it in items), str(w.message))
        for it, out in zip(items, outs):
            protect = [it.path] + ([it.mask_path] if it.mask_path else [])
            self.writer.write(it.path, it.out, out, it.record,
                              protect + ([self.mask] if self.mask else []))
            self._advance()
