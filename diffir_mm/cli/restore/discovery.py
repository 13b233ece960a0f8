"""Which files ``diffir-restore`` reads: the inputs named on the command line and their masks.

An input is a file (taken as it is, whatever its name), a folder (its image files, by extension,
not recursive) or a glob pattern (the image files it matches; ``**`` recurses). Files named twice
-- directly, through a folder, a pattern or a link -- are restored once. Problems are returned as
one-line messages, so the caller reports them and goes on with the rest.

Inpainting masks: ``--mask`` is one file for every image; ``--mask-dir`` holds a mask per image
with the image's stem and any image extension (lower or upper case).
"""
from __future__ import annotations

import glob
import os
from typing import List, Optional, Sequence, Tuple

from diffir_mm.inference.io import IMAGE_EXTENSIONS

__all__ = ['is_image_name', 'collect_inputs', 'path_key', 'find_mask', 'mask_files']


def is_image_name(name: str) -> bool:
    """Whether ``name`` has an image file extension that :mod:`diffir_mm.inference.io` reads."""
    return os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def path_key(path: str) -> str:
    """A key equal for every spelling of one file (links resolved; case-folded where the file
    system folds case)."""
    return os.path.normcase(os.path.realpath(path))


def _folder_images(folder: str) -> List[str]:
    return sorted(os.path.join(folder, name) for name in os.listdir(folder)
                  if is_image_name(name) and os.path.isfile(os.path.join(folder, name)))


def collect_inputs(items: Sequence[str]) -> Tuple[List[str], List[str]]:
    """Expand files / folders / globs into image paths.

    Args:
        items: The command line's inputs.

    Returns:
        The image paths (in the order named, each file once) and one ``'ITEM: problem'`` line
        per item that names no image.
    """
    files: List[str] = []
    errors: List[str] = []
    for item in items:
        if os.path.isdir(item):
            found = _folder_images(item)
            if not found:
                errors.append(f'{item}: folder contains no images')
            files.extend(found)
        elif os.path.exists(item):
            files.append(item)
        elif glob.has_magic(item):
            found = sorted(path for path in glob.glob(item, recursive=True)
                           if os.path.isfile(path) and is_image_name(path))
            if not found:
                errors.append(f'{item}: no images match this pattern')
            files.extend(found)
        else:
            errors.append(f'{item}: no such file or directory')
    seen, unique = set(), []
    for path in files:
        key = path_key(path)
        if key not in seen:
            seen.add(key)
            unique.append(path)
    return unique, errors


def find_mask(image: str, mask_dir: str) -> Optional[str]:
    """The mask of ``image`` in ``mask_dir``: the image's stem with an image extension (lower
    case first, then upper case), or None."""
    stem = os.path.splitext(os.path.basename(image))[0]
    names = [stem + ext for ext in IMAGE_EXTENSIONS] + [stem + ext.upper()
                                                         for ext in IMAGE_EXTENSIONS]
    return next((os.path.join(mask_dir, name) for name in names
                 if os.path.isfile(os.path.join(mask_dir, name))), None)


def mask_files(mask: Optional[str], mask_dir: Optional[str]) -> List[str]:
    """Every file the mask options name (``--mask``, everything in ``--mask-dir``): files that
    outputs must never replace."""
    files = [mask] if mask else []
    if mask_dir and os.path.isdir(mask_dir):
        files += [os.path.join(mask_dir, name) for name in os.listdir(mask_dir)]
    return files
