"""The command line of ``diffir-restore``: its options, and the checks that need no model.

:func:`build_parser` defines the options (``-h`` lists them with their defaults);
:func:`validate` rejects combinations the parser cannot, before anything is loaded. The model
options (``--checkpoint``, ``--config``, ``--task``, ``--backend``...) become a Restorer in
:mod:`.model`.
"""
from __future__ import annotations

import argparse
import os
from typing import Optional

import cv2

from diffir_mm.archs import SR_SCALES, TASKS
from diffir_mm.inference.compilation import COMPILE_CHOICES
from diffir_mm.inference.precision import PRECISIONS
from diffir_mm.inference.tiling import DEFAULT_PRIOR_MAX_SIDE, DEFAULT_TILE_OVERLAP

__all__ = ['build_parser', 'validate']


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``diffir-restore``."""
    p = argparse.ArgumentParser(
        prog='diffir-restore', description='Restore images with a DiffIR (ICCV 2023) model.',
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('inputs', nargs='+', metavar='INPUT',
                   help='image files, folders or glob patterns')
    p.add_argument('-o', '--out-dir', required=True, help='output folder')
    model = p.add_mutually_exclusive_group()
    model.add_argument('--task', choices=TASKS,
                       help='released model type (checked against --checkpoint); read from the '
                            'checkpoint if omitted')
    model.add_argument('--config', help='mmengine config whose model.generator is the network')
    p.add_argument('--scale', type=int, choices=SR_SCALES, default=4,
                   help='SR factor of --task sr')
    p.add_argument('--big', action='store_true',
                   help='--task inpaint: the big Places-Challenge model (with --random-init)')
    p.add_argument('--checkpoint', help='official (.pth/.ckpt) or diffir-mm checkpoint')
    p.add_argument('--backend', choices=('pytorch', 'onnxruntime'), default='pytorch',
                   help='onnxruntime: run an export of tools/export_onnx.py (--onnx)')
    p.add_argument('--onnx', help='--backend onnxruntime: the exported X.onnx (X.json beside it)')
    p.add_argument('--tile', type=int, default=0,
                   help='tile side in input pixels (0 = whole image); tiles share one prior')
    p.add_argument('--tile-overlap', type=int, default=DEFAULT_TILE_OVERLAP,
                   help='overlap between tiles (input pixels)')
    p.add_argument('--tile-batch', type=int, default=1, help='tiles per forward')
    p.add_argument('--prior-max-side', type=int, default=None,
                   help='downscale the image the global prior is estimated from when the longest '
                        "side of the prior network's grid exceeds this (changes the result; 0 = "
                        f'never). Default: {DEFAULT_PRIOR_MAX_SIDE} for runs cut into several '
                        'tiles, never without tiling (= the official inference)')
    p.add_argument('--precision', choices=PRECISIONS, default='auto',
                   help='auto = bf16 on CUDA GPUs with bf16 units (Ampere and later), fp32 '
                        'otherwise; fp16/bf16 output with NaN/Inf is recomputed in fp32 (with a '
                        'warning)')
    p.add_argument('--compile', choices=COMPILE_CHOICES, default='auto',
                   help='torch.compile the transformer blocks (pays for many images or tiles of '
                        'one size; every new size compiles again); auto = per device, '
                        'currently off')
    p.add_argument('--seed', type=int, default=0, help='seed of the diffusion start vector')
    p.add_argument('--device', default='auto', help="'cpu', 'cuda', 'cuda:1' or 'auto'")
    p.add_argument('--batch-size', type=int, default=1, help='images of equal size per forward')
    p.add_argument('--threads', type=int, default=0,
                   help='CPU threads for torch or ONNX Runtime (0 = their default)')
    p.add_argument('--ext', help='output format, e.g. png (default: that of each input)')
    p.add_argument('--suffix', default='', help='appended to the output file stem')
    p.add_argument('--compare', action='store_true',
                   help='also write <stem><suffix>_compare<ext>: input (upscaled) | output')
    p.add_argument('--mask', help='inpainting: one mask for every image (non-zero = hole)')
    p.add_argument('--mask-dir', help='inpainting: folder of masks with the images\' stems')
    p.add_argument('--no-progress', action='store_true', help='no progress bar')
    p.add_argument('-q', '--quiet', action='store_true', help='hide note: lines')
    p.add_argument('--random-init', action='store_true', help=argparse.SUPPRESS)
    return p


def validate(args: argparse.Namespace) -> Optional[str]:
    """What is wrong with ``args`` as a whole (one line), or None.

    Checks what the parser cannot (ranges, options that exclude or need each other, existing
    mask paths, a writable ``--ext``, an ``--out-dir`` that is not a file); the model the options
    name is checked when it is built (:mod:`.model`).
    """
    if args.tile < 0:
        return '--tile must be >= 0'
    if args.tile_overlap < 0:
        return '--tile-overlap must be >= 0'
    if args.tile and args.tile_overlap >= args.tile:
        return f'--tile-overlap ({args.tile_overlap}) must be smaller than --tile ({args.tile})'
    if args.tile_batch < 1 or args.batch_size < 1:
        return '--tile-batch and --batch-size must be >= 1'
    if args.big and args.task != 'inpaint':
        return '--big applies to --task inpaint only'
    if args.prior_max_side is not None and args.prior_max_side < 0:
        return '--prior-max-side must be >= 0'
    if args.mask and args.mask_dir:
        return 'give either --mask or --mask-dir'
    if args.backend == 'onnxruntime':
        if not args.onnx:
            return '--backend onnxruntime needs --onnx X.onnx (from tools/export_onnx.py)'
        clash = [flag for flag, value in (('--checkpoint', args.checkpoint),
                                          ('--config', args.config),
                                          ('--random-init', args.random_init)) if value]
        if clash:
            return f'{clash[0]} does not apply to --backend onnxruntime (the weights are in --onnx)'
        if args.compile == 'on':
            return '--compile on applies to the pytorch backend'
    elif args.onnx:
        return '--onnx needs --backend onnxruntime'
    if args.mask and not os.path.isfile(args.mask):
        return f'--mask {args.mask}: no such file'
    if args.mask_dir and not os.path.isdir(args.mask_dir):
        return f'--mask-dir {args.mask_dir}: no such folder'
    if args.ext and not cv2.haveImageWriter('x.' + args.ext.lstrip('.')):
        return f'--ext {args.ext}: OpenCV cannot write this format'
    if args.out_dir and os.path.exists(args.out_dir) and not os.path.isdir(args.out_dir):
        return f'--out-dir {args.out_dir} exists and is not a folder'
    return None
