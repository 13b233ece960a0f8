"""``tools/export_onnx.py``: export a stage-2 DiffIR model to ONNX (graphs + JSON sidecar).

Examples::

    # a released or diffir-mm checkpoint (task and scale read from it, or checked when given)
    python tools/export_onnx.py DiffIRS2-GANx4.pth sr_x4.onnx --task sr --scale 4 --dynamic
    # an mmengine config (its data-preprocessor mean/std go into the sidecar) + weights
    python tools/export_onnx.py configs/diffir_deblur_s2.py deblur.onnx --checkpoint iter_300000.pth
    # the released architecture with random weights (tests, benchmarks)
    python tools/export_onnx.py preset inpaint.onnx --task inpaint --big --random-init

Writes ``OUT.onnx`` (``image, x_T -> restored``), ``OUT.prior.onnx`` (``image, x_T -> ipr``),
``OUT.dirformer.onnx`` (``image, ipr -> restored``) and ``OUT.json`` (see
:mod:`diffir_mm.deploy.onnx_export`). Batch, height and width are always dynamic (``--dynamic``
is accepted for compatibility). Bad input gives one ``error:`` line and exit status 2.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Optional, Sequence

__all__ = ['build_parser', 'main']


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``tools/export_onnx.py``."""
    from diffir_mm.archs import SR_SCALES, TASKS

    from .onnx_export import EXPORTERS
    from .sidecar import GRAPH_IO

    p = argparse.ArgumentParser(
        prog='export_onnx.py', description='Export a stage-2 DiffIR model to ONNX.',
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('source', metavar='CONFIG_OR_CHECKPOINT',
                   help="mmengine config (.py), checkpoint (official or ours), or 'preset' "
                        '(the released architecture of --task, with --random-init)')
    p.add_argument('out', metavar='OUT.onnx', help='output model (graphs and OUT.json beside it)')
    p.add_argument('--task', choices=TASKS, help='task (checked against the checkpoint)')
    p.add_argument('--scale', type=int, choices=SR_SCALES, default=4, help='SR factor')
    p.add_argument('--big', action='store_true', help='the big inpainting model (preset)')
    p.add_argument('--stage', type=int, default=2, help='only stage 2 can be exported')
    p.add_argument('--checkpoint', help='weights for a config source')
    p.add_argument('--dynamic', action='store_true',
                   help='dynamic batch/height/width (always on; kept for compatibility)')
    p.add_argument('--opset', type=int, default=None,
                   help='ONNX opset (default: 17 torchscript, 18 dynamo)')
    p.add_argument('--fp16', action='store_true', help='half-precision weights and inputs')
    p.add_argument('--exporter', choices=EXPORTERS, default='torchscript',
                   help="torch's exporter to use (see diffir_mm.deploy.onnx_export)")
    p.add_argument('--graphs', nargs='+', choices=sorted(GRAPH_IO), default=None,
                   help='write only these graphs (the onnxruntime backend needs prior and '
                        'dirformer)')
    p.add_argument('--random-init', action='store_true',
                   help='random weights instead of a checkpoint (tests and benchmarks only)')
    return p


def _load(args: argparse.Namespace):
    """(network, input_norm, source description) from the arguments."""
    import torch

    from diffir_mm.archs import build_diffir, preset_name
    from diffir_mm.inference.restorer import network_from_checkpoint, network_from_config

    if args.source == 'preset':
        if not (args.task and args.random_init):
            raise ValueError("source 'preset' needs --task and --random-init")
        torch.manual_seed(0)
        name = preset_name(args.task, args.scale, args.big)
        return build_diffir(name, stage=2).eval(), None, f'preset {name} (random weights)'
    if not os.path.isfile(args.source):
        raise FileNotFoundError(f'{args.source}: no such file')
    if args.source.endswith('.py'):
        if args.checkpoint is None and not args.random_init:
            raise ValueError('a config source needs --checkpoint (or --random-init)')
        if args.checkpoint is not None and not os.path.isfile(args.checkpoint):
            raise FileNotFoundError(f'--checkpoint {args.checkpoint}: no such file')
        torch.manual_seed(0)
        net, norm = network_from_config(args.source, args.checkpoint,
                                        random_init=args.random_init)
        if args.task is not None and (net.task != args.task or (
                args.task == 'sr' and net.scale != args.scale)):
            raise ValueError(f'the config builds a {net.task} x{net.scale} network, not '
                             f'{args.task}')
        return net, norm, os.path.basename(args.checkpoint or args.source)
    if args.checkpoint is not None:
        raise ValueError('--checkpoint applies to a config source; give the checkpoint as '
                         'CONFIG_OR_CHECKPOINT')
    net = network_from_checkpoint(args.source, task=args.task, scale=args.scale)
    return net, None, os.path.basename(args.source)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the export; returns the exit status (0 ok, 2 bad input)."""
    args = build_parser().parse_args(argv)
    if args.stage != 2:
        print(f'error: --stage {args.stage}: only stage 2 can be exported (stage 1 needs the '
              'ground truth)', file=sys.stderr)
        return 2
    if args.big and args.task != 'inpaint':
        print('error: --big applies to --task inpaint only', file=sys.stderr)
        return 2
    if not args.out.lower().endswith('.onnx'):
        print(f'error: OUT.onnx must end in .onnx, got {args.out}', file=sys.stderr)
        return 2
    try:
        net, norm, source = _load(args)
        from .onnx_export import export_onnx
        graphs = args.graphs or ('full', 'prior', 'dirformer')
        meta = export_onnx(net, args.out, opset=args.opset, fp16=args.fp16,
                           exporter=args.exporter, graphs=graphs, input_norm=norm,
                           extra_meta=dict(source=source))
    except Exception as err:  # noqa: BLE001 - one line for any setup problem
        text = str(err).strip().splitlines()
        print(f'error: {text[0] if text else type(err).__name__}', file=sys.stderr)
        return 2
    task = f'sr x{meta["scale"]}' if meta['task'] == 'sr' else meta['task']
    print(f'exported {task} ({source}) to {", ".join(sorted(meta["graphs"]))} graphs + '
          f'{os.path.splitext(args.out)[0]}.json in {meta["export_seconds"]:.1f} s '
          f'(opset {meta["opset"]}, {meta["dtype"]}, {meta["exporter"]})')
    return 0
