"""``diffir-app``: start the DiffIR web app (Gradio) on this machine.

Examples::

    # after `make demo`: the models it trained in demo_out/ are found by themselves
    diffir-app

    # a released checkpoint; another port, reachable from the local network
    diffir-app --checkpoint DiffIRS2-GoPro.pth --host 0.0.0.0 --port 8080

    # a config + checkpoint, and a training work dir (its last checkpoint and dumped config)
    diffir-app --config configs/diffir_sr_x2_s2.py --checkpoint iter_1000000.pth \\
        --model work_dirs/diffir_deblur_s2

Models are named as on ``diffir-restore`` (``--checkpoint``, ``--config``, ``--task``,
``--scale``); ``--model`` adds more (checkpoint files, work dirs, demo output folders), and the
models ``make demo`` trained in ``--demo-dir`` are always offered. The page can also take a
checkpoint upload. Devices: the CPU and every CUDA device PyTorch sees (the first CUDA device
is the default, as ``diffir-restore --device auto``).

The server needs no network: Gradio's telemetry, version check and CDN assets are off
(:mod:`.offline`); ``--share`` (a public link through Gradio's servers) is off unless asked
for. One restoration runs at a time on each device (``--per-device``); the others wait in
Gradio's queue with their place shown. Bad input is a message in the page, never a traceback.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Dict, List, Optional, Sequence

from .models import ModelCache, ModelSource, find_demo_models, source_from_path

__all__ = ['main', 'build_parser', 'collect_models', 'devices']

EXIT_OK, EXIT_SETUP = 0, 2


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``diffir-app``."""
    from diffir_mm.archs import SR_SCALES, TASKS
    p = argparse.ArgumentParser(
        prog='diffir-app', description='Restore images with DiffIR in a web page (Gradio).',
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('--checkpoint', help='official (.pth/.ckpt) or diffir-mm checkpoint')
    p.add_argument('--config', help='mmengine config whose model.generator is the network '
                                    '(with --checkpoint)')
    p.add_argument('--task', choices=TASKS, help='expected model type of --checkpoint')
    p.add_argument('--scale', type=int, choices=SR_SCALES, default=4,
                   help='SR factor of --task sr')
    p.add_argument('--model', action='append', default=[], metavar='PATH',
                   help='more models: a checkpoint, a training work dir or a demo output folder '
                        '(repeatable)')
    p.add_argument('--demo-dir', default='demo_out',
                   help="where `make demo` wrote its models (offered when present)")
    p.add_argument('--host', default='127.0.0.1',
                   help='address to listen on (0.0.0.0: every network interface)')
    p.add_argument('--port', type=int, default=7860, help='port to listen on')
    p.add_argument('--share', action='store_true',
                   help="also publish a temporary public link through Gradio's servers "
                        '(needs the internet)')
    p.add_argument('--per-device', type=int, default=1,
                   help='restorations running at once on one device')
    p.add_argument('--max-memory', type=float, default=None, metavar='GB',
                   help='memory one restoration may take (default: what the device has free)')
    p.add_argument('--threads', type=int, default=0,
                   help='CPU threads for torch (0 = its default; as diffir-restore --threads)')
    p.add_argument('--out-dir', default=None,
                   help='folder for the results (default: a new temporary folder)')
    return p


def devices() -> List[str]:
    """The devices the page offers: CUDA devices first (the default), then the CPU."""
    import torch
    cuda = [f'cuda:{i}' for i in range(torch.cuda.device_count())]
    return cuda + ['cpu']


def collect_models(args: argparse.Namespace) -> Dict[str, ModelSource]:
    """Menu label -> model, from the options and the demo folder.

    Raises:
        ValueError: a named path holds no model (one-line message).
    """
    found: List[ModelSource] = []
    if args.checkpoint:
        found += source_from_path(args.checkpoint, config=args.config, task=args.task,
                                  scale=args.scale)
    elif args.config:
        raise ValueError('--config needs --checkpoint')
    for path in args.model:
        found += source_from_path(path)
    if os.path.isdir(args.demo_dir):
        found += find_demo_models(args.demo_dir)
    menu: Dict[str, ModelSource] = {}
    for source in found:
        label, n = source.label, 1
        while label in menu and menu[label] != source:
            n += 1
            label = f'{source.label} ({n})'
        menu[label] = source
    return menu


def _validate(args: argparse.Namespace) -> Optional[str]:
    if not 0 < args.port < 65536:
        return '--port must be between 1 and 65535'
    if args.per_device < 1:
        return '--per-device must be >= 1'
    if args.max_memory is not None and args.max_memory <= 0:
        return '--max-memory must be positive'
    if args.out_dir and os.path.exists(args.out_dir) and not os.path.isdir(args.out_dir):
        return f'--out-dir {args.out_dir} exists and is not a folder'
    return None


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run ``diffir-app`` until interrupted; returns the exit status."""
    args = build_parser().parse_args(argv)
    problem = _validate(args)
    if problem:
        print(f'error: {problem}', file=sys.stderr)
        return EXIT_SETUP
    try:
        menu = collect_models(args)
    except ValueError as err:
        print(f'error: {err}', file=sys.stderr)
        return EXIT_SETUP
    if not menu:
        print(f'note: no model given and none in {args.demo_dir}/: upload a checkpoint in the '
              'page, or give --checkpoint (or run `make demo` first)', file=sys.stderr)
    if args.threads > 0:
        import torch
        torch.set_num_threads(args.threads)
    try:
        from .offline import StripExternalAssets, import_gradio
        import_gradio()
        from .service import RestorationService, default_out_dir
        from .ui import build_page
    except ImportError as err:
        print(f'error: {err}', file=sys.stderr)
        return EXIT_SETUP
    from starlette.middleware import Middleware

    out_dir = os.path.abspath(args.out_dir) if args.out_dir else default_out_dir()
    offered = devices()
    budget = None if args.max_memory is None else int(args.max_memory * 2 ** 30)
    service = RestorationService(ModelCache(), out_dir, offered, per_device=args.per_device,
                                 memory_budget=budget)
    page = build_page(service, menu, concurrency=args.per_device * len(offered))
    print(f'diffir-app: {len(menu)} model(s), devices {", ".join(offered)}; results in '
          f'{out_dir}', file=sys.stderr)
    try:
        page.queue(default_concurrency_limit=None).launch(
            server_name=args.host, server_port=args.port, share=args.share, show_api=False,
            ssr_mode=False, allowed_paths=[out_dir], inbrowser=False,
            app_kwargs={'middleware': [Middleware(StripExternalAssets)]})
    except OSError as err:
        print(f'error: cannot serve on {args.host}:{args.port}: {err}', file=sys.stderr)
        return EXIT_SETUP
    return EXIT_OK


if __name__ == '__main__':  # pragma: no cover
    sys.exit(main())
