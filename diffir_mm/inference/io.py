"""Reading and writing images for inference: OpenCV, any bit depth, alpha, atomic writes.

* :func:`read_image` decodes with ``cv2.IMREAD_UNCHANGED`` (no EXIF rotation, no forced colour
  conversion) and returns an :class:`ImageRecord` whose ``rgb`` is float32 RGB in [0, 1]
  (8-bit / 16-bit integer images are divided by 255 / 65535; float images are kept as they are):

  - grayscale (H x W, or one channel) is replicated to RGB and written back as one channel;
  - BGRA / RGBA: the alpha channel is kept aside untouched and re-attached on writing
    (resized to the output size for SR, bilinear in its own dtype);
  - 16-bit (PNG / TIFF) is processed in float and written back 16-bit when the output format
    allows it (PNG, TIFF); float32 TIFF/EXR stays float32.

* :func:`write_image` converts back to the record's layout and writes **atomically**
  (:func:`diffir_mm.utils.atomic.write_bytes_atomic`: a temporary file in the destination
  folder, moved over the destination; a failure leaves no partial file behind). It refuses to
  write onto any path listed in ``protect`` (the input files).

Errors are :class:`ImageIOError` with a one-line message.
"""
from __future__ import annotations

import contextlib
import os
import sys
from dataclasses import dataclass, field
from typing import Iterable, List, Optional, Sequence

import cv2
import numpy as np

from diffir_mm.utils.atomic import write_bytes_atomic

__all__ = ['IMAGE_EXTENSIONS', 'ImageIOError', 'ImageRecord', 'read_image', 'write_image',
           'encode_image', 'to_output_array', 'same_path', 'side_by_side', 'resize_to']

#: Extensions picked up when a folder is given.
IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp', '.ppm', '.pgm',
                    '.pnm', '.jp2', '.exr', '.hdr')

# dtypes each output format can hold (the first one is the fallback), and alpha support
_FORMAT_DTYPES = {
    '.png': (np.uint8, np.uint16),
    '.tif': (np.uint8, np.uint16, np.float32),
    '.tiff': (np.uint8, np.uint16, np.float32),
    '.exr': (np.float32,),
    '.hdr': (np.float32,),
    '.ppm': (np.uint8, np.uint16),
    '.pgm': (np.uint8, np.uint16),
    '.pnm': (np.uint8, np.uint16),
    '.jp2': (np.uint8, np.uint16),
}
_ALPHA_FORMATS = ('.png', '.tif', '.tiff', '.webp', '.exr')
_SCALES = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}


class ImageIOError(RuntimeError):
    """An image cannot be read or written (one-line message)."""


@dataclass
class ImageRecord:
    """A decoded image ready for the network, plus what is needed to write it back.

    Attributes:
        rgb: float32 (H, W, 3) RGB, [0, 1] for integer sources.
        dtype: Source sample type (uint8, uint16 or float32).
        gray: The source had a single colour channel.
        alpha: The source alpha channel (H, W) in the source dtype, or None.
        path: Source path ('' for arrays).
        notes: Human-readable remarks about conversions (grayscale, alpha, 16-bit ...).
    """

    rgb: np.ndarray
    dtype: np.dtype = field(default_factory=lambda: np.dtype(np.uint8))
    gray: bool = False
    alpha: Optional[np.ndarray] = None
    path: str = ''
    notes: List[str] = field(default_factory=list)

    @property
    def size(self):
        """(H, W)."""
        return self.rgb.shape[:2]

    @property
    def ext(self) -> str:
        """Lower-case extension of the source path."""
        return os.path.splitext(self.path)[1].lower()

    @classmethod
    def from_array(cls, array: np.ndarray, bgr: bool = False, path: str = '') -> 'ImageRecord':
        """Build a record from an (H, W), (H, W, 1|2|3|4) uint8 / uint16 / float array.

        ``bgr`` says whether colour channels are in OpenCV's BGR(A) order.
        """
        return _decode_array(array, path=path, bgr=bgr)


def _decode_array(img: np.ndarray, path: str, bgr: bool) -> ImageRecord:
    name = path or 'image'
    if img.dtype == np.float64 or img.dtype == np.float16:
        img = img.astype(np.float32)
    if img.dtype not in (np.uint8, np.uint16, np.float32):
        raise ImageIOError(f'unsupported sample type {img.dtype} (expected 8/16-bit or float32)')
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[..., 0]
    if img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[2] not in (2, 3, 4)):
        raise ImageIOError(f'unsupported image shape {img.shape}')
    if img.shape[0] < 1 or img.shape[1] < 1:
        raise ImageIOError(f'empty image {img.shape}')
    notes = []
    alpha = None
    gray = False
    if img.ndim == 2:
        gray = True
        color = np.repeat(img[..., None], 3, axis=2)
        notes.append('grayscale input: restored as RGB, written back as grayscale')
    elif img.shape[2] == 2:  # gray + alpha
        gray = True
        alpha = img[..., 1].copy()
        color = np.repeat(img[..., :1], 3, axis=2)
        notes.append('grayscale+alpha input: alpha carried through, gray written back')
    else:
        if img.shape[2] == 4:
            alpha = img[..., 3].copy()
            notes.append('RGBA input: colour restored, alpha channel carried through unchanged')
        color = img[..., :3]
        if bgr:
            color = color[..., ::-1]
    scale = _SCALES.get(np.dtype(img.dtype))
    rgb = np.ascontiguousarray(color, dtype=np.float32)
    if scale is not None:
        rgb /= scale
    if img.dtype == np.uint16:
        notes.append('16-bit input: processed in float, written back 16-bit where the format '
                     'allows')
    if not np.isfinite(rgb).all():
        raise ImageIOError(f'{name} contains NaN/Inf pixel values')
    return ImageRecord(rgb=rgb, dtype=np.dtype(img.dtype), gray=gray, alpha=alpha, path=path,
                       notes=notes)


@contextlib.contextmanager
def _quiet_decoders():
    """Swallow what the codec libraries print straight to file descriptor 2 while decoding.

    libpng / libjpeg write warnings such as ``libpng error: PNG input buffer is incomplete``
    directly to the C ``stderr``, bypassing OpenCV's log level; the caller reports a corrupt
    file in one line instead.
    """
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):
        yield
        return
    try:
        with open(os.devnull, 'wb') as null:
            os.dup2(null.fileno(), 2)
            try:
                yield
            finally:
                os.dup2(saved, 2)
    finally:
        os.close(saved)


def read_image(path: str) -> ImageRecord:
    """Decode ``path`` with ``cv2.IMREAD_UNCHANGED`` into an :class:`ImageRecord`.

    Raises:
        ImageIOError: missing, unreadable, corrupt or unsupported file (one-line message).
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ImageIOError('no such file')
    if os.path.isdir(path):
        raise ImageIOError('is a folder, not an image')
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as err:
        raise ImageIOError(f'cannot read file: {err.strerror or err}') from None
    if data.size == 0:
        raise ImageIOError('empty file')
    with _quiet_decoders():
        img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if img is None:
        raise ImageIOError('cannot decode image (corrupt file or unsupported format)')
    return _decode_array(img, path=path, bgr=True)


def resize_to(array: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize an (H, W[, C]) array with bilinear interpolation (no-op at the same size)."""
    if array.shape[:2] == (height, width):
        return array
    interp = cv2.INTER_LINEAR if (height >= array.shape[0]) else cv2.INTER_AREA
    return cv2.resize(array, (width, height), interpolation=interp)


def _output_dtype(dtype: np.dtype, ext: str) -> np.dtype:
    allowed = _FORMAT_DTYPES.get(ext, (np.uint8,))
    dtype = np.dtype(dtype)
    if any(dtype == np.dtype(a) for a in allowed):
        return dtype
    if dtype == np.float32 and np.uint16 in allowed:
        return np.dtype(np.uint16)
    return np.dtype(allowed[0])


def to_output_array(rgb: np.ndarray, record: ImageRecord, ext: str,
                    notes: Optional[List[str]] = None) -> np.ndarray:
    """Convert a float RGB result to the array OpenCV writes for ``record``'s layout in ``ext``.

    Grayscale sources become one channel again (ITU-R BT.601 luma), the alpha channel is attached
    (resized to the result size) when ``ext`` supports it, and the samples are converted to the
    source bit depth (or the closest one ``ext`` holds). Remarks about lossy conversions are
    appended to ``notes``.
    """
    ext = ext.lower()
    out_dtype = _output_dtype(record.dtype, ext)
    if notes is not None and out_dtype != record.dtype:
        notes.append(f'{record.dtype} samples written as {out_dtype} ({ext} cannot hold '
                     f'{record.dtype})')
    h, w = rgb.shape[:2]
    rgb = np.asarray(rgb, dtype=np.float32)
    if record.gray:
        color = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)
    else:
        color = np.ascontiguousarray(rgb[..., ::-1])  # BGR for OpenCV
    scale = _SCALES.get(out_dtype)
    if scale is not None:
        color = np.clip(np.rint(np.clip(color, 0.0, 1.0) * scale), 0, scale).astype(out_dtype)
    else:
        color = color.astype(out_dtype)
    alpha = record.alpha
    if alpha is not None and ext not in _ALPHA_FORMATS:
        if notes is not None:
            notes.append(f'alpha channel dropped ({ext} has no alpha)')
        alpha = None
    if alpha is not None:
        alpha = _convert_samples(resize_to(alpha, h, w), record.dtype, out_dtype)
        if color.ndim == 2:
            color = np.dstack([color, color, color])  # OpenCV writes 4-channel, not gray+alpha
        color = np.dstack([color, alpha])
    return color


def _convert_samples(array: np.ndarray, src: np.dtype, dst: np.dtype) -> np.ndarray:
    if np.dtype(src) == np.dtype(dst):
        return array
    src_scale = _SCALES.get(np.dtype(src), 1.0)
    dst_scale = _SCALES.get(np.dtype(dst))
    unit = array.astype(np.float32) / src_scale
    if dst_scale is None:
        return unit.astype(dst)
    return np.clip(np.rint(np.clip(unit, 0, 1) * dst_scale), 0, dst_scale).astype(dst)


def encode_image(array: np.ndarray, ext: str) -> bytes:
    """Encode an OpenCV-layout array into ``ext`` bytes."""
    try:
        ok, buf = cv2.imencode(ext, array)
    except cv2.error as err:
        raise ImageIOError(f'cannot encode {ext}: {str(err).strip().splitlines()[-1]}') from None
    if not ok:
        raise ImageIOError(f'cannot encode the result as {ext}')
    return buf.tobytes()


def same_path(a: str, b: str) -> bool:
    """Whether two paths name the same file (resolving links; also for non-existing paths)."""
    try:
        if os.path.exists(a) and os.path.exists(b):
            return os.path.samefile(a, b)
    except OSError:
        pass
    return os.path.normcase(os.path.realpath(a)) == os.path.normcase(os.path.realpath(b))


def write_image(path: str, rgb: np.ndarray, record: Optional[ImageRecord] = None,
                protect: Iterable[str] = (), notes: Optional[List[str]] = None) -> str:
    """Write a float RGB result atomically in ``record``'s layout (see :func:`to_output_array`).

    Args:
        path: Destination; its extension selects the format.
        rgb: (H, W, 3) float RGB result.
        record: The source record (dtype, gray, alpha); 8-bit RGB when omitted.
        protect: Paths that must never be overwritten (the inputs).
        notes: Collects remarks about lossy conversions.

    Returns:
        ``path``.
    """
    path = os.fspath(path)
    for p in protect:
        if same_path(path, p):
            raise ImageIOError(f'refusing to overwrite the input file {p}')
    ext = os.path.splitext(path)[1].lower()
    if not ext:
        raise ImageIOError(f'output path {path} has no extension')
    record = record or ImageRecord(rgb=rgb)
    data = encode_image(to_output_array(rgb, record, ext, notes), ext)
    try:
        write_bytes_atomic(path, data)
    except OSError as err:
        raise ImageIOError(f'cannot write {path}: {err.strerror or err}') from None
    return path


def side_by_side(left: np.ndarray, right: np.ndarray, gap: int = 0) -> np.ndarray:
    """Concatenate two (H, W, 3) float images horizontally; ``left`` is resized to ``right``'s
    height (nearest for integer upscales, so SR inputs show their pixels)."""
    h, w = right.shape[:2]
    if left.shape[:2] != (h, w):
        lh, lw = left.shape[:2]
        exact = h % lh == 0 and w % lw == 0 and h // lh == w // lw
        interp = cv2.INTER_NEAREST if exact else cv2.INTER_CUBIC
        left = cv2.resize(np.ascontiguousarray(left, dtype=np.float32), (w, h),
                          interpolation=interp)
    parts: Sequence[np.ndarray] = [left.astype(np.float32)]
    if gap:
        parts = [*parts, np.ones((h, gap, 3), np.float32)]
    return np.concatenate([*parts, right.astype(np.float32)], axis=1)
