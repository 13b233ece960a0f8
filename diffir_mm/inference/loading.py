"""One way from what a user names -- checkpoint, config + checkpoint, ONNX export -- to a Restorer.

``diffir-restore`` and ``diffir-app`` both build their :class:`~.restorer.Restorer` here, so the
same model arguments give the same network, input normalisation and settings in both (and the
app's download is byte-identical to the command's file):

* ``config`` (+ ``checkpoint``): ``model.generator`` of an mmengine config, the data
  preprocessor's mean/std honoured (:meth:`Restorer.from_config`);
* ``checkpoint`` alone: anything :mod:`diffir_mm.checkpoint` reads; architecture, task and scale
  come from the weights, ``task`` / ``scale`` are checked when given
  (:meth:`Restorer.from_checkpoint`);
* ``task`` with ``random_init``: the released architecture with random weights (tests only);
* ``backend='onnxruntime'`` with ``onnx``: an export of ``tools/export_onnx.py``.

Errors are raised with one-line messages (the command prints them as ``error:`` lines, the app
as a message in its page).
"""
from __future__ import annotations

from typing import Any, Optional

from .restorer import Restorer

__all__ = ['BACKENDS', 'build_restorer']

#: Accepted ``backend`` values.
BACKENDS = ('pytorch', 'onnxruntime')


def build_restorer(checkpoint: Optional[str] = None, config: Optional[str] = None,
                   task: Optional[str] = None, scale: int = 4, big: bool = False,
                   random_init: bool = False, backend: str = 'pytorch',
                   onnx: Optional[str] = None, threads: int = 0,
                   **settings: Any) -> Restorer:
    """Build the restorer of a model named as on ``diffir-restore``'s command line.

    Args:
        checkpoint: Official (``.pth`` / ``.ckpt``) or diffir-mm checkpoint.
        config: mmengine config whose ``model.generator`` is the network.
        task: Released model type (checked against ``checkpoint``).
        scale: SR factor of ``task='sr'``.
        big: ``task='inpaint'``: the big Places-Challenge model (with ``random_init``).
        random_init: Random weights instead of a checkpoint (tests and benchmarks only).
        backend: ``'pytorch'`` or ``'onnxruntime'`` (then ``onnx`` names the export).
        onnx: The exported ``X.onnx`` (``X.json`` beside it).
        threads: ONNX Runtime intra-op threads (0 = its default).
        **settings: :class:`Restorer` settings (``device``, ``precision``, ``compile``, ``tile``,
            ``tile_overlap``, ``tile_batch``, ``seed``, ``prior_max_side``).

    Raises:
        ValueError: No model is named or ``backend`` is unknown;
            :class:`~diffir_mm.checkpoint.CheckpointMismatchError` (a ValueError) when the
            checkpoint cannot be read or holds another task or scale. A missing file raises
            FileNotFoundError, an unusable config or export the error of its reader.
    """
    if backend not in BACKENDS:
        raise ValueError(f'backend must be one of {BACKENDS}, got {backend!r}')
    if backend == 'onnxruntime':
        # lazy: onnxruntime is an optional dependency (the 'onnx' extra)
        from diffir_mm.deploy.onnx_runtime import OnnxRestorer
        return OnnxRestorer(onnx, threads=threads, task=task, scale=scale, **settings)
    if config:
        return Restorer.from_config(config, checkpoint, random_init=random_init, **settings)
    if checkpoint:
        return Restorer.from_checkpoint(checkpoint, task=task, scale=scale, **settings)
    if task and random_init:
        return Restorer.from_preset(task, scale, big, random_init=True, **settings)
    raise ValueError('--checkpoint is required' if task or config
                     else 'give --checkpoint (and optionally --task) or --config')
