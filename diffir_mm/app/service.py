"""One restoration of the web app: check the request, restore, write the PNG, score, preview.

Gradio-free (the page, :mod:`.ui`, shows :class:`AppError` as a message; tests call
:meth:`RestorationService.run` directly). The download is byte-identical to
``diffir-restore IMAGE -o DIR --ext png --seed S --tile T --precision P --device D`` with the
same model arguments (and ``--mask MASK`` for inpainting, the mask the app offers as a download)
because every step is the CLI's own:

* the uploaded file is read as stored, by :func:`~diffir_mm.inference.io.read_image` (not the
  copy a browser canvas re-encodes), so its bit depth, grayscale layout and alpha are kept; an
  uploaded mask by the CLI's :func:`~diffir_mm.cli.restore.run.read_mask`;
* the model comes from :func:`~diffir_mm.inference.loading.build_restorer` with the request's
  device, precision and tile size (:mod:`.models`);
* :meth:`~diffir_mm.inference.Restorer.restore_batch` runs with the seed, as the CLI calls it;
* the CLI's :func:`~diffir_mm.cli.restore.writing.write_restored` writes the PNG atomically.

(Same threads, too: float sums may round differently with another number of CPU threads.)

Masks: every pixel a brush stroke covers (alpha > 0 in any layer of the page's editor) and every
non-zero pixel of an uploaded mask (the official rule, as ``diffir-restore --mask``) is a hole.

An untiled restoration that would not fit in the device's free memory (estimated by
:mod:`diffir_mm.inference.memory`) is refused with the tile size to use instead; so is an image
whose decoded pixels alone would not fit.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
import uuid
import warnings
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from diffir_mm.cli.restore.errors import one_line
from diffir_mm.cli.restore.run import read_mask
from diffir_mm.cli.restore.writing import write_restored
from diffir_mm.inference.io import ImageIOError, ImageRecord, encode_image, read_image
from diffir_mm.inference.memory import (activation_bytes_per_pixel, available_bytes,
                                        untiled_peak_bytes)
from diffir_mm.inference.precision import PRECISIONS, PrecisionFallbackWarning
from diffir_mm.inference.restorer import Restorer
from diffir_mm.inference.tiling import DEFAULT_TILE_OVERLAP
from diffir_mm.utils.atomic import write_bytes_atomic

from .models import ModelCache, ModelSource

__all__ = ['AppError', 'Settings', 'Outcome', 'RestorationService', 'quality_metrics',
           'painted_holes']

#: Called with (fraction done, what is happening).
Progress = Callable[[float, str], None]

#: Tile sides suggested when an image does not fit in one piece, largest first.
TILE_SUGGESTIONS = (1024, 768, 512, 384, 256, 128)

#: Border pixels the SR test metrics leave out (``configs/_base_/datasets/df2k_bicubic.py``).
SR_CROP_BORDER = 4

#: Longest side of the before/after previews in the page (the download is full size).
PREVIEW_SIDE = 1280


class AppError(Exception):
    """A problem with the request, shown in the page as one line."""


def _gib(n: float) -> str:
    return f'{n / 2 ** 30:.1f} GB'


@dataclass
class Settings:
    """What the page sets, as ``diffir-restore``'s options of the same names."""

    seed: int = 0
    tile: int = 0
    precision: str = 'auto'
    device: str = 'cpu'


@dataclass
class Outcome:
    """A finished restoration.

    Attributes:
        png: The restored image, as ``diffir-restore --ext png`` writes it.
        mask_png: Inpainting: the holes used (0/255 PNG; ``diffir-restore --mask`` accepts it).
        before: uint8 RGB preview of the input, at the preview size of ``after``.
        after: uint8 RGB preview of the result.
        metrics: PSNR / SSIM against the uploaded ground truth (empty without one).
        notes: Remarks on conversions and fallbacks (as the CLI's ``note:`` lines).
        summary: One line on the model and the run.
    """

    png: str
    mask_png: Optional[str]
    before: np.ndarray
    after: np.ndarray
    metrics: Dict[str, float] = field(default_factory=dict)
    notes: List[str] = field(default_factory=list)
    summary: str = ''


def painted_holes(layers: Sequence[np.ndarray]) -> Optional[np.ndarray]:
    """Holes painted in the page's editor: alpha > 0 in any RGBA layer (bool H x W), or None."""
    holes = None
    for layer in layers:
        if layer is None:
            continue
        layer = np.asarray(layer)
        if layer.ndim != 3 or layer.shape[2] != 4:
            raise AppError('the painted mask could not be read; clear it and paint again')
        painted = layer[..., 3] > 0
        if holes is not None and holes.shape != painted.shape:
            raise AppError('the painted layers differ in size; clear the mask and paint again')
        holes = painted if holes is None else holes | painted
    return holes


def quality_metrics(task: str, gt: np.ndarray, out: np.ndarray) -> Dict[str, float]:
    """MMagic's PSNR and SSIM of uint8 RGB ``out`` against ``gt``, as the configs' test metrics:

    on RGB for deblurring and inpainting (``gopro_deblur.py``, ``celebahq_inpaint.py``), on the
    luma (Y) without a 4-pixel border for super-resolution (``df2k_bicubic.py``).
    """
    from diffir_mm.utils.warnings import quiet_mm_import_warnings
    with quiet_mm_import_warnings():  # registration first: it imports and extends MMagic
        import diffir_mm.registration  # noqa: F401
        from mmagic.evaluation.metrics.psnr import psnr
        from mmagic.evaluation.metrics.ssim import ssim
    crop, convert = (SR_CROP_BORDER, 'Y') if task == 'sr' else (0, None)
    gt, out = gt.astype(np.float64), out.astype(np.float64)
    return {'PSNR': float(psnr(gt, out, crop, convert_to=convert)),
            'SSIM': float(ssim(gt, out, crop, convert_to=convert))}


def _image_size(path: str) -> Optional[Tuple[int, int]]:
    """(H, W) from the file header, without decoding; None where Pillow cannot tell."""
    try:
        from PIL import Image
        Image.MAX_IMAGE_PIXELS = None  # sizes are checked against memory below
        with Image.open(path) as img:
            w, h = img.size
        return h, w
    except Exception:  # noqa: BLE001 - unknown to Pillow: decode to find out
        return None


def _to_uint8(rgb: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(np.clip(rgb, 0.0, 1.0) * 255.0), 0, 255).astype(np.uint8)


def _preview(rgb: np.ndarray, height: int, width: int) -> np.ndarray:
    """uint8 RGB at most :data:`PREVIEW_SIDE` px long, from ``rgb`` shown at ``height x width``
    (an SR input is enlarged with nearest-neighbour, so its pixels show)."""
    if rgb.shape[:2] != (height, width):
        rgb = cv2.resize(rgb, (width, height), interpolation=cv2.INTER_NEAREST)
    shrink = min(1.0, PREVIEW_SIDE / max(height, width))
    if shrink < 1.0:
        size = (max(1, round(width * shrink)), max(1, round(height * shrink)))
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    return _to_uint8(rgb)


class RestorationService:
    """Runs restorations for the page: one at a time per device unless told otherwise.

    Args:
        models: Loaded models.
        out_dir: Where results are written (a folder per request; the oldest are deleted).
        devices: Devices the page offers (``'cpu'``, ``'cuda:0'`` ...).
        per_device: Restorations run at once on one device.
        memory_budget: Bytes one restoration may take; default: what the device has free.
        keep: Result folders kept.
    """

    def __init__(self, models: ModelCache, out_dir: str, devices: Sequence[str],
                 per_device: int = 1, memory_budget: Optional[int] = None,
                 keep: int = 16) -> None:
        self.models = models
        self.out_dir = out_dir
        self.devices = list(devices)
        self.memory_budget = memory_budget
        self.keep = keep
        self._slots = {d: threading.Semaphore(per_device) for d in self.devices}

    # -------------------------------------------------------------------------- checks
    def _check_settings(self, settings: Settings) -> None:
        if settings.device not in self._slots:
            raise AppError(f'device {settings.device!r} is not offered here '
                           f'({", ".join(self.devices)})')
        if settings.precision not in PRECISIONS:
            raise AppError(f'precision must be one of {", ".join(PRECISIONS)}')
        if settings.tile < 0:
            raise AppError('the tile size must be 0 (whole image) or positive')
        if settings.tile and settings.tile <= DEFAULT_TILE_OVERLAP:
            raise AppError(f'the tile size must exceed the tile overlap ({DEFAULT_TILE_OVERLAP})')

    def _budget(self, device: str) -> Optional[int]:
        return self.memory_budget if self.memory_budget is not None else available_bytes(device)

    def _check_pixels(self, height: int, width: int) -> None:
        """Refuse an image whose decoded pixels alone would take half the free memory."""
        budget = self._budget('cpu')
        decoded = height * width * 3 * 4 * 3  # float32 RGB: decoded, network input, output
        if budget is not None and decoded > budget / 2:
            raise AppError(f'the image is {width}x{height} ({height * width / 1e6:.0f} MP): its '
                           f'pixels alone need {_gib(decoded)}, more than this machine can '
                           f'spare ({_gib(budget)} free)')

    def _check_untiled(self, restorer, height: int, width: int, device: str) -> None:
        """Refuse an untiled run that would not fit; suggest the largest tile that does."""
        need = untiled_peak_bytes(restorer.network, height, width)
        budget = self._budget(device)
        if need is None or budget is None or need <= budget:
            return
        fits = [t for t in TILE_SUGGESTIONS if t < max(height, width)
                and untiled_peak_bytes(restorer.network, min(t, height), min(t, width))
                <= budget / 2]
        advice = (f'set a tile size of {fits[0]} or less' if fits
                  else 'this device cannot hold even small tiles of this model')
        raise AppError(f'the image is {width}x{height} ({height * width / 1e6:.1f} MP): '
                       f'restoring it in one piece needs about {_gib(need)}, {device} has '
                       f'{_gib(budget)} free; {advice} (tiles share one global prior)')

    def _read(self, path: str, what: str) -> ImageRecord:
        name = os.path.basename(path)
        try:
            return read_image(path)
        except ImageIOError as err:
            raise AppError(f'{what} {name}: {one_line(err)}') from None

    def _holes(self, record: ImageRecord, painted: Sequence[np.ndarray],
               mask_file: Optional[str], notes: List[str]) -> np.ndarray:
        h, w = record.size
        holes = painted_holes(painted)
        if holes is not None and holes.shape != (h, w):
            raise AppError(f'the painted mask is {holes.shape[1]}x{holes.shape[0]}, the image '
                           f'{w}x{h}; clear the mask and paint again')
        if mask_file:
            try:
                uploaded, _, remark = read_mask(record.path, mask_file, None)
            except ImageIOError as err:
                raise AppError(f'mask {os.path.basename(mask_file)}: {one_line(err)}') from None
            notes.extend([remark] if remark else [])
            uploaded = uploaded > 0
            if uploaded.shape != (h, w):
                raise AppError(f'the mask is {uploaded.shape[1]}x{uploaded.shape[0]}, the image '
                               f'{w}x{h}: upload a mask of the image\'s size')
            holes = uploaded if holes is None else holes | uploaded
        if holes is None or not holes.any():
            raise AppError('inpainting needs holes: paint over the image (or upload a mask, '
                           'non-zero = hole)')
        return holes

    # -------------------------------------------------------------------------- the page
    def load(self, source: ModelSource, settings: Settings) -> Restorer:
        """The restorer of ``source`` under ``settings`` (device, precision, tile; cached)."""
        self._check_settings(settings)
        try:
            restorer = self.models.get(source, settings.device, settings.precision,
                                       settings.tile)
        except Exception as err:  # noqa: BLE001 - any loading failure is one line in the page
            raise AppError(f'cannot load {source.label}: {one_line(err)}') from None
        activation_bytes_per_pixel(restorer.network)  # measured now, while the page says loading
        return restorer

    def editor_layers(self, image: str, max_pixels: int) -> Optional[Tuple[str, str]]:
        """The mask editor's background (8-bit RGB PNG of ``image``) and an empty RGBA layer of
        its size; None for images of more than ``max_pixels``."""
        size = _image_size(image)
        if size is not None and size[0] * size[1] > max_pixels:
            return None
        record = self._read(image, 'image')
        h, w = record.size
        if h * w > max_pixels:
            return None
        folder = self._request_dir()
        background = os.path.join(folder, 'background.png')
        blank = os.path.join(folder, 'layer.png')
        bgr = np.ascontiguousarray(_to_uint8(record.rgb)[..., ::-1])
        write_bytes_atomic(background, encode_image(bgr, '.png'))
        write_bytes_atomic(blank, encode_image(np.zeros((h, w, 4), np.uint8), '.png'))
        return background, blank

    # -------------------------------------------------------------------------- the run
    def _request_dir(self) -> str:
        os.makedirs(self.out_dir, exist_ok=True)
        old = sorted((os.path.join(self.out_dir, n) for n in os.listdir(self.out_dir)),
                     key=os.path.getmtime)
        for folder in old[:max(0, len(old) - self.keep + 1)]:
            shutil.rmtree(folder, ignore_errors=True)
        folder = os.path.join(self.out_dir, f'{time.strftime("%Y%m%d-%H%M%S")}-'
                                            f'{uuid.uuid4().hex[:8]}')
        os.makedirs(folder)
        return folder

    def run(self, source: ModelSource, image: Optional[str], settings: Settings,
            painted: Sequence[np.ndarray] = (), mask_file: Optional[str] = None,
            ground_truth: Optional[str] = None,
            progress: Optional[Progress] = None) -> Outcome:
        """Restore ``image`` (a path) with ``source`` under ``settings``.

        Args:
            source: The model.
            image: The uploaded file, as stored.
            settings: Seed, tile, precision, device.
            painted: RGBA layers painted in the page's editor (inpainting).
            mask_file: An uploaded mask (inpainting; non-zero = hole).
            ground_truth: An uploaded reference for PSNR / SSIM.
            progress: Receives (fraction, message).

        Raises:
            AppError: the request cannot be served (one-line message).
        """
        report = progress or (lambda fraction, message: None)
        if not image:
            raise AppError('upload an image first')
        self._check_settings(settings)
        size = _image_size(image)  # from the header: a huge upload is refused undecoded
        if size is not None:
            self._check_pixels(*size)
        report(0.0, f'loading {source.label} on {settings.device}')
        restorer = self.load(source, settings)
        if size is not None and not settings.tile:
            self._check_untiled(restorer, *size, settings.device)
        record = self._read(image, 'image')
        h, w = record.size
        if size is None:
            self._check_pixels(h, w)
            if not settings.tile:
                self._check_untiled(restorer, h, w, settings.device)
        notes = list(record.notes)
        holes = (self._holes(record, painted, mask_file, notes) if restorer.task == 'inpaint'
                 else None)
        if restorer.task != 'inpaint':
            stray = painted_holes(painted)
            if mask_file or (stray is not None and stray.any()):
                notes.append(f'the mask was ignored: this is a {restorer.task} model')
        truth = self._read(ground_truth, 'ground truth') if ground_truth else None
        if truth is not None and truth.size != (h * restorer.scale, w * restorer.scale):
            raise AppError(f'the ground truth is {truth.size[1]}x{truth.size[0]}, the result '
                           f'will be {w * restorer.scale}x{h * restorer.scale}')

        out = self._restore(restorer, record, holes, settings, report, notes)
        report(0.95, 'writing the PNG')
        folder = self._request_dir()
        stem = os.path.splitext(os.path.basename(image))[0] or 'image'
        png = os.path.join(folder, f'{stem}_diffir.png')
        try:
            notes += write_restored(png, out, record)
        except ImageIOError as err:
            raise AppError(f'cannot write the result: {one_line(err)}') from None
        mask_png = None
        if holes is not None:
            mask_png = os.path.join(folder, f'{stem}_mask.png')
            write_bytes_atomic(mask_png, encode_image(holes.astype(np.uint8) * 255, '.png'))
        metrics = {}
        if truth is not None:
            metrics = quality_metrics(restorer.task, _to_uint8(truth.rgb), _to_uint8(out))
        oh, ow = out.shape[:2]
        return Outcome(png=png, mask_png=mask_png, before=_preview(record.rgb, oh, ow),
                       after=_preview(out, oh, ow), metrics=metrics, notes=notes,
                       summary=f'{restorer.describe()}; seed {settings.seed}; {w}x{h} -> '
                               f'{ow}x{oh}')

    def _restore(self, restorer: Restorer, record: ImageRecord, holes: Optional[np.ndarray],
                 settings: Settings, report: Progress, notes: List[str]) -> np.ndarray:
        """The restoration itself, holding one of the device's slots."""
        def tiles(done: int, total: int) -> None:
            report(0.1 + 0.8 * done / total, f'restoring: tile {done}/{total}' if total > 1
                   else 'restoring')

        slot = self._slots[settings.device]
        if not slot.acquire(blocking=False):
            report(0.0, f'waiting for {settings.device}: another restoration is running')
            slot.acquire()
        try:
            report(0.1, 'restoring' + (' (tiled)' if restorer.tile else ' (whole image)'))
            masks = None if holes is None else [holes.astype(np.float32)]
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter('always', PrecisionFallbackWarning)
                try:
                    out = restorer.restore_batch([record.rgb], masks=masks,
                                                 seed=int(settings.seed), progress=tiles)[0]
                except (MemoryError, RuntimeError) as err:
                    raise AppError(f'restoration failed: {type(err).__name__}: '
                                   f'{one_line(err)}') from None
            notes.extend(sorted({str(w.message) for w in caught
                                 if issubclass(w.category, PrecisionFallbackWarning)}))
            return out
        finally:
            slot.release()


def default_out_dir() -> str:
    """A fresh folder for the results of one server."""
    return tempfile.mkdtemp(prefix='diffir-app-')
