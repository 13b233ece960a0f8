"""Inference utilities for DiffIR, in plain PyTorch + OpenCV (no mmagic / mmcv / mmengine).

* :mod:`.tiling` -- tiled restoration under one global IR prior per image (prior rule and
  blending documented there);
* :mod:`.precision` -- fp32 / bf16 / fp16 with the non-finite-output fp32 fallback;
* :mod:`.io` -- robust OpenCV reading (gray, RGBA, 16-bit) and atomic writing;
* :mod:`.restorer` -- :class:`Restorer`, built from a config, a checkpoint or a network;
* :mod:`.loading` -- :func:`build_restorer`: a model named as on ``diffir-restore``'s command line
  (the CLI and the web app load models with it);
* :mod:`.memory` -- the memory an untiled restoration needs, and what a device has free.
"""
from .io import ImageIOError, ImageRecord, read_image, write_image
from .loading import build_restorer
from .precision import (PRECISIONS, NonFiniteOutputError, PrecisionFallbackWarning,
                        run_with_precision)
from .restorer import Restorer, network_from_checkpoint, network_from_config
from .tiling import (DEFAULT_PRIOR_MAX_SIDE, DEFAULT_TILE_OVERLAP, estimate_global_prior,
                     prior_input, restore_tiled, tile_windows)

__all__ = [
    'ImageIOError', 'ImageRecord', 'read_image', 'write_image', 'PRECISIONS',
    'NonFiniteOutputError', 'PrecisionFallbackWarning', 'run_with_precision', 'Restorer',
    'network_from_checkpoint', 'network_from_config', 'build_restorer', 'DEFAULT_PRIOR_MAX_SIDE',
    'DEFAULT_TILE_OVERLAP', 'estimate_global_prior', 'prior_input', 'restore_tiled',
    'tile_windows'
]
