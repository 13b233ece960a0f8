"""Convert a released DiffIR checkpoint into a checkpoint our configs and ``tools/test.py`` load.

Reads an official BasicSR ``.pth`` (``params_ema``, falling back to ``params``) or a LaMa /
PyTorch-Lightning ``.ckpt`` (inpainting), validates it against the requested task / stage / scale
with :func:`diffir_mm.archs.load_official` and writes an mmengine-style checkpoint::

    {'state_dict': {'generator.<key>': ...,        # BasicSR 'params' (else 'params_ema')
                    'generator_ema.<key>': ...,    # only when the source has 'params_ema'
                    'teacher.<S1 key>': ...},      # stage 2: --teacher, or LaMa 'generatorS1.*'
     'meta': {'diffir_mm': {'converted_from': ..., 'task': ..., 'stage': ..., 'scale': ...}}}

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
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from diffir_mm.archs import (CheckpointMismatchError, extract_network_state,  # noqa: E402
                             load_official, official_to_ours, read_checkpoint)

StateDict = Dict[str, torch.Tensor]


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


def _validated(source: Mapping[str, Any], what: str, stage: int, component: str,
               load_kwargs: Dict[str, Any]) -> StateDict:
    """Load ``source`` into the requested network (raises on mismatch); return our keys."""
    try:
        net = load_official(source, stage=stage, component=component, **load_kwargs)
    except CheckpointMismatchError as err:
        raise ConversionError(f'{what}: {err}') from None
    except (RuntimeError, TypeError, ValueError) as err:  # size mismatch, bad --arch, ...
        first = str(err).strip().splitlines()
        raise ConversionError(f'{what}: does not fit the requested architecture: '
                              f'{" ".join(line.strip() for line in first[:2])}') from None
    official = extract_network_state(source, component)
    ours = official_to_ours(official, stage, net if stage == 2 else None)
    expected = net.state_dict()
    if set(ours) != set(expected):  # load_official already guarantees this; keep it explicit
        raise ConversionError(f'{what}: keys do not match the network')
    return {k: v.detach().clone().contiguous() for k, v in ours.items()}


def convert(src: Path, task: str, stage: int, scale: int = 4, big: bool = False,
            teacher: Optional[Path] = None,
            arch: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """Build the converted checkpoint (a dict) from the released file ``src``.

    Args:
        src: Released BasicSR ``.pth`` or LaMa ``.ckpt`` file.
        task: ``'deblur'``, ``'sr'`` or ``'inpaint'``.
        stage: 1 or 2.
        scale: SR factor (4, 2 or 1).
        big: Inpainting: the big Places-Challenge model.
        teacher: Stage 2 only: the stage-1 file whose network becomes ``teacher.*``.
        arch: Official constructor arguments overriding the released preset (non-released
            variants).

    Raises:
        ConversionError: The file is missing, unreadable, or of another task / scale / stage.
    """
    load_kwargs = dict(task=task, scale=scale, big=big, **(arch or {}))
    try:
        ckpt = read_checkpoint(src)
    except (FileNotFoundError, CheckpointMismatchError) as err:
        raise ConversionError(str(err)) from None
    if not isinstance(ckpt, Mapping):
        raise ConversionError(f'{src.name}: not a checkpoint dictionary')

    name = src.name
    state: StateDict = {}
    if 'params' in ckpt or 'params_ema' in ckpt:  # BasicSR
        main_key = 'params' if 'params' in ckpt else 'params_ema'
        generator = _validated({main_key: ckpt[main_key]}, f'{name} [{main_key}]', stage,
                               'generator', load_kwargs)
        state.update({'generator.' + k: v for k, v in generator.items()})
        if 'params_ema' in ckpt:
            ema = _validated({'params_ema': ckpt['params_ema']}, f'{name} [params_ema]', stage,
                             'generator', load_kwargs)
            state.update({'generator_ema.' + k: v for k, v in ema.items()})
        lama_teacher = False
    else:  # LaMa / Lightning, our own checkpoints, or a bare official state dict
        generator = _validated(ckpt, name, stage, 'generator', load_kwargs)
        state.update({'generator.' + k: v for k, v in generator.items()})
        sd = ckpt.get('state_dict', {}) if isinstance(ckpt.get('state_dict'), Mapping) else {}
        lama_teacher = any(k.startswith('generatorS1.') for k in sd)

    teacher_from = None
    if teacher is not None:
        try:
            teacher_ckpt = read_checkpoint(teacher)
        except (FileNotFoundError, CheckpointMismatchError) as err:
            raise ConversionError(f'--teacher: {err}') from None
        teacher_state = _validated(teacher_ckpt, f'--teacher {teacher.name}', 1, 'generator',
                                   load_kwargs)
        teacher_from = teacher.name
    elif stage == 2 and lama_teacher:
        teacher_state = _validated(ckpt, f'{name} [generatorS1]', 1, 'teacher', load_kwargs)
        teacher_from = f'{name} [generatorS1]'
    else:
        teacher_state = {}
    state.update({'teacher.' + k: v for k, v in teacher_state.items()})

    meta: Dict[str, Any] = dict(converted_from=name, task=task, stage=stage,
                                scale=scale if task == 'sr' else 1)
    if task == 'inpaint':
        meta['big'] = big
    if teacher_from:
        meta['teacher_from'] = teacher_from
    if arch:
        meta['arch'] = dict(arch)
    return {'state_dict': state, 'meta': {'diffir_mm': meta}}


def save_atomic(obj: Any, dst: Path, force: bool = False) -> None:
    """``torch.save`` to a temporary file next to ``dst``, then ``os.replace`` it into place.

    Raises:
        ConversionError: ``dst`` exists and ``force`` is False.
    """
    if dst.exists() and not force:
        raise ConversionError(f'{dst} exists; pass --force to overwrite it')
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f'.{dst.name}.', suffix='.tmp', dir=dst.parent)
    try:
        with os.fdopen(fd, 'wb') as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, dst)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Convert a released DiffIR checkpoint (BasicSR .pth / LaMa .ckpt) into a '
                    'diffir_mm (mmengine) checkpoint.')
    parser.add_argument('src', type=Path, metavar='IN', help='released checkpoint')
    parser.add_argument('dst', type=Path, metavar='OUT', help='converted checkpoint to write')
    parser.add_argument('--task', required=True, choices=['deblur', 'sr', 'inpaint'])
    parser.add_argument('--stage', required=True, type=int, choices=[1, 2])
    parser.add_argument('--scale', type=int, default=4, choices=[1, 2, 4],
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
        ckpt = convert(args.src, args.task, args.stage, args.scale, args.big, args.teacher,
                       parse_arch_overrides(args.arch))
        save_atomic(ckpt, args.dst, args.force)
    except ConversionError as err:
        print(f'error: {" ".join(str(err).split())}', file=sys.stderr)
        return 1
    groups = sorted({k.split('.', 1)[0] for k in ckpt['state_dict']})
    print(f"wrote {args.dst} ({', '.join(groups)}; "
          f"{len(ckpt['state_dict'])} tensors) from {args.src.name}")
    return 0


if __name__ == '__main__':
    sys.exit(main())
