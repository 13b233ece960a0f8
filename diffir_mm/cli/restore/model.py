"""The model ``diffir-restore``'s options name, as a Restorer (built by the app the same way).

:func:`restorer_from_args` maps the parsed model and run options onto
:func:`diffir_mm.inference.loading.build_restorer`, the one builder shared with ``diffir-app``;
:func:`mask_problem` checks that the mask options fit the model that was loaded (only then is its
task known: ``--task`` may be omitted and read from the checkpoint).
"""
from __future__ import annotations

import argparse
from typing import Optional

from diffir_mm.inference.loading import build_restorer
from diffir_mm.inference.restorer import Restorer

__all__ = ['restorer_from_args', 'mask_problem']


def restorer_from_args(args: argparse.Namespace) -> Restorer:
    """Build the Restorer of ``diffir-restore``'s parsed ``args``.

    Raises:
        Exception: Whatever :func:`~diffir_mm.inference.loading.build_restorer` raises for a
            model that cannot be used, with a one-line message.
    """
    settings = dict(device=args.device, precision=args.precision, tile=args.tile or None,
                    tile_overlap=args.tile_overlap, tile_batch=args.tile_batch, seed=args.seed,
                    prior_max_side=args.prior_max_side)
    if args.backend == 'pytorch':
        settings['compile'] = args.compile
    return build_restorer(checkpoint=args.checkpoint, config=args.config, task=args.task,
                          scale=args.scale, big=args.big, random_init=args.random_init,
                          backend=args.backend, onnx=args.onnx, threads=args.threads,
                          **settings)


def mask_problem(task: str, args: argparse.Namespace) -> Optional[str]:
    """What is wrong with the mask options for a model of ``task`` (one line), or None."""
    has_masks = bool(args.mask or args.mask_dir)
    if task == 'inpaint' and not has_masks:
        return 'inpainting needs --mask or --mask-dir'
    if task != 'inpaint' and has_masks:
        return f'--mask/--mask-dir only apply to inpainting (model: {task})'
    return None
