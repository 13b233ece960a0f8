"""mmengine reads local checkpoint files through :mod:`diffir_mm.checkpoint`.

mmengine 0.10.7 opens local files (``load_from``, ``--resume``, ``tools/test.py``'s CHECKPOINT,
MMagic's inferencer) with a plain ``torch.load(filename, map_location)``. Its
``CheckpointLoader`` lets a scheme's loader be replaced; :func:`load_from_local` is registered
for local paths (prefix ``''``), so those reads are :func:`diffir_mm.checkpoint.load_file`:
``weights_only=True`` with the allow-list of mmengine training checkpoints (real
``HistoryBuffer`` objects, which resuming needs), ``.safetensors`` files, and one-line errors
for unreadable or unsafe files. Importing :mod:`diffir_mm.registration` registers it.
"""
from __future__ import annotations

import os
from typing import Any

from mmengine.runner.checkpoint import CheckpointLoader

from diffir_mm.checkpoint import load_file

__all__ = ['load_from_local']


@CheckpointLoader.register_scheme(prefixes='', force=True)
def load_from_local(filename: str, map_location: Any = None) -> Any:
    """mmengine's local-file loader: :func:`~diffir_mm.checkpoint.load_file` with mmengine's
    objects."""
    return load_file(os.path.expanduser(filename), map_location=map_location,
                     mmengine_objects=True)
