"""Convert a released DiffIR checkpoint into a checkpoint our configs and ``tools/test.py`` load.

Reads an official BasicSR ``.pth`` or a LaMa / PyTorch-Lightning ``.ckpt`` (inpainting) -- or one
of ours, a training checkpoint of ``tools/train.py`` or a ``.safetensors`` file -- once with
:func:`diffir_mm.checkpoint.read_components`, checks every network in it against the requested
task / stage / scale (and architecture) with :func:`diffir_mm.checkpoint.require`, and writes the
mmengine checkpoint of :func:`diffir_mm.checkpoint.write_checkpoint` (``.safetensors`` when OUT
ends so)::

    {'state_dict': {'generator.<key>': ...,        # BasicSR 'params' (else 'params_ema')
                    'generator_ema.<key>': ...,    # BasicSR 'params_ema' (else 'params')
                    'teacher.<S1 key>': ...},      # stage 2: --teacher, or LaMa 'generatorS1.*'
     'meta': {'diffir_mm': {'converted_from': ..., 'task': ..., 'stage': ..., 'scale': ...,
                            'generator_from': ..., 'generator_ema_from': ..., ...}}}

where the keys are ours (``dirformer.*``, ``cpen.*``, ``denoiser.*``).

Examples::

    python tools/convert_official_ckpt.py DiffIRS2-GAN.pth sr_x4_s2gan.pth --task sr --stage 2
    python tools/convert_official_ckpt.py DiffIRS2.pth deblur_s2.pth --task deblur --stage 2 \\
        --teacher DiffIRS1.pth
    python tools/convert_official_ckpt.py last.ckpt places_s2.pth --task inpaint --stage 2

A checkpoint of another task, scale or stage is refused with one line on stderr and exit code 1.
"""
from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from diffir_mm.archs import SR_SCALES, TASKS, build_diffir, preset_name  # noqa: E402
from diffir_mm.checkpoint import (CheckpointMismatchError, read_components,  # noqa: E402
                                  read_network, require, write_checkpoint)


class ConversionError(Exception):
    """A user-facing conversion failure (reported as one line, exit code 1)."""


def parse_arch_overrides(items: Sequence[str]) -> Dict[str, Any]:
    """Parse ``KEY=VALUE`` pairs (Python literals) into official constructor arguments."""
    overrides: Dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition('=')
        if not sep or not key:
            raise ConversionError(f'--arch expects KEY=VALUE, got {item!r}')
        try:
            overrides[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            overrides[key] = value  # a bare string such as LayerNorm_type=BiasFree
    return overrides


def convert(src: Path, dst: Path, task: str, stage: int, scale: int = 4, big: bool = False,
            teacher: Optional[Path] = None, arch: Optional[Dict[str, Any]] = None,
            force: bool = False) -> Dict[str, Any]:
    """Check the released file ``src`` and write it to ``dst`` as our checkpoint.

    Args:
        src: Released BasicSR ``.pth`` or LaMa ``.ckpt`` file (or one of ours).
        dst: Output file (written atomically).
        task: ``'deblur'``, ``'sr'`` or ``'inpaint'``.
        stage: 1 or 2.
        scale: SR factor (4, 2 or 1).
        big: Inpainting: the big Places-Challenge model.
        teacher: Stage 2 only: the stage-1 file whose network becomes ``teacher.*``.
        arch: Official constructor arguments overriding the released preset (non-released
            variants).
        force: Overwrite ``dst``.

    Returns:
        The checkpoint written.

    Raises:
        ConversionError: The file is missing, unreadable, or of another task / scale / stage
            or architecture.
    """
    try:
        components = read_components(src)
    except (FileNotFoundError, CheckpointMismatchError) as err:
        raise ConversionError(str(err)) from None
    try:
        preset = preset_name(task, scale, big)
        nets = {s: build_diffir(preset, s, **(arch or {})) for s in {stage, 1}}
    except (TypeError, ValueError) as err:  # unknown --arch names, bad combinations
        raise ConversionError(str(err)) from None
    try:
        networks = {name: require(components[name], net=nets[stage])
                    for name in ('generator', 'generator_ema') if name in components}
        if stage == 2 and 'teacher' in components and teacher is None:
            networks['teacher'] = require(components['teacher'], net=nets[1])
    except CheckpointMismatchError as err:
        raise ConversionError(str(err)) from None
    if not networks:
        raise ConversionError(f'{src.name} holds no generator network')
    if teacher is not None:
        try:
            networks['teacher'] = require(read_network(teacher), net=nets[1])
        except (FileNotFoundError, CheckpointMismatchError) as err:
            raise ConversionError(f'--teacher: {err}') from None

    meta: Dict[str, Any] = dict(converted_from=src.name, task=task, stage=stage,
                                scale=scale if task == 'sr' else 1)
    if task == 'inpaint':
        meta['big'] = big
    if arch:
        meta['arch'] = dict(arch)
    try:
        return write_checkpoint(dst, networks, meta, overwrite=force)
    except FileExistsError:
        raise ConversionError(f'{dst} exists; pass --force to overwrite it') from None


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Convert a released DiffIR checkpoint (BasicSR .pth / LaMa .ckpt) into a '
                    'diffir_mm (mmengine) checkpoint.')
    parser.add_argument('src', type=Path, metavar='IN', help='released checkpoint')
    parser.add_argument('dst', type=Path, metavar='OUT', help='converted checkpoint to write')
    parser.add_argument('--task', required=True, choices=TASKS)
    parser.add_argument('--stage', required=True, type=int, choices=[1, 2])
    parser.add_argument('--scale', type=int, default=4, choices=SR_SCALES,
                        help='SR factor (default 4)')
    parser.add_argument('--big', action='store_true',
                        help='inpainting: the big Places-Challenge model')
    parser.add_argument('--teacher', type=Path, default=None, metavar='S1_FILE',
                        help='stage 2: released stage-1 file, stored as teacher.* (LaMa stage-2 '
                             'files carry their teacher already)')
    parser.add_argument('--arch', nargs='+', default=[], metavar='KEY=VALUE',
                        help='official constructor arguments overriding the released preset, '
                             'e.g. dim=48 "num_blocks=[4,6,6,8]" (non-released variants)')
    parser.add_argument('--force', action='store_true', help='overwrite OUT if it exists')
    args = parser.parse_args(argv)
    if args.teacher is not None and args.stage != 2:
        parser.error('--teacher is only meaningful with --stage 2')
    if args.big and args.task != 'inpaint':
        parser.error('--big is only meaningful with --task inpaint')
    return args


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command-line entry point; returns the exit code."""
    args = parse_args(argv)
    try:
        if args.dst.exists() and not args.force:  # fail before the (slow) conversion
            raise ConversionError(f'{args.dst} exists; pass --force to overwrite it')
        ckpt = convert(args.src, args.dst, args.task, args.stage, args.scale, args.big,
                       args.teacher, parse_arch_overrides(args.arch), args.force)
    except ConversionError as err:
        print(f'error: {" ".join(str(err).split())}', file=sys.stderr)
        return 1
    groups = sorted({k.split('.', 1)[0] for k in ckpt['state_dict']})
    print(f"wrote {args.dst} ({', '.join(groups)}; "
          f"{len(ckpt['state_dict'])} tensors) from {args.src.name}")
    return 0


if __name__ == '__main__':
    sys.exit(main())
