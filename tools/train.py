#!/usr/bin/env python
"""Train a diffir_mm (MMagic) model with mmengine's ``Runner``.

Same command line as MMagic 1.2.0's ``tools/train.py``::

    python tools/train.py CONFIG [--work-dir DIR] [--resume] [--amp]
        [--auto-scale-lr] [--cfg-options KEY=VAL ...]
        [--launcher {none,pytorch,slurm,mpi}] [--local-rank N]

Differences from MMagic's script:

* the repository root is put on ``sys.path`` and ``diffir_mm`` is imported (configs also carry
  ``custom_imports``);
* third-party import-time warnings are silenced (scoped filters, see
  :mod:`diffir_mm.utils.warnings`);
* ``--auto-scale-lr`` works: it enables ``cfg.auto_scale_lr`` (the config must define
  ``auto_scale_lr.base_batch_size``);
* ``--resume`` works on torch>=2.6 with safe loading kept on: mmengine reads local checkpoints
  through :mod:`diffir_mm.checkpoint` (:mod:`diffir_mm.engine.checkpoint_loader`, registered with
  diffir_mm);
* resuming is exact when the config declares
  :class:`diffir_mm.engine.random_state_hook.RandomStateCheckpointHook` (the runtime base does, in
  ``default_hooks``);
* distributed launchers work on CPU-only machines (``gloo``, see :mod:`diffir_mm.utils.dist`).
"""
import argparse
import logging
import os
import os.path as osp
import sys
from typing import Any, Callable, Optional

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

from diffir_mm.utils.config_errors import OneLineErrors, load_config  # noqa: E402
from diffir_mm.utils.host_memory import keep_freed_memory_unless_disabled  # noqa: E402
from diffir_mm.utils.warnings import quiet_mm_import_warnings  # noqa: E402

with quiet_mm_import_warnings():
    from mmengine.config import Config, DictAction


def parse_args(argv: Optional[list] = None) -> argparse.Namespace:
    """Parse the command line.

    Args:
        argv: Arguments; ``sys.argv[1:]`` when None.

    Returns:
        The parsed arguments.
    """
    parser = argparse.ArgumentParser(description='Train a model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--resume',
        action='store_true',
        help='resume from the latest checkpoint in the work dir, or from '
        '`load_from` when it is set')
    parser.add_argument(
        '--amp',
        action='store_true',
        default=False,
        help='enable automatic-mixed-precision training')
    parser.add_argument(
        '--auto-scale-lr',
        action='store_true',
        help='scale the learning rate by (world size * batch size) / '
        'auto_scale_lr.base_batch_size')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override some settings in the used config, the key-value pair '
        'in xxx=yyy format will be merged into config file. If the value to '
        'be overwritten is a list, it should be like key="[a,b]" or key=a,b '
        'It also allows nested list/tuple values, e.g. key="[(a,b),(c,d)]" '
        'Note that the quotation marks are necessary and that no white space '
        'is allowed.')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    # torchrun / torch.distributed.launch (torch>=2) pass `--local-rank`.
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    parser.add_argument(
        '--debug',
        action='store_true',
        help='show the traceback of configuration errors (also: DIFFIR_DEBUG=1)')
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def enable_amp(cfg: Config, log: Callable[..., Any]) -> None:
    """Turn ``OptimWrapper`` into ``AmpOptimWrapper(loss_scale='dynamic')``.

    Handles a single wrapper and ``MultiOptimWrapperConstructor`` configs (one wrapper per
    sub-module).

    Args:
        cfg: The config, modified in place.
        log: ``print_log``-like logging function.
    """
    optim_wrapper = cfg.optim_wrapper
    constructor = optim_wrapper.get('constructor',
                                    'DefaultOptimWrapperConstructor')
    if constructor == 'DefaultOptimWrapperConstructor':
        wrapper_type = optim_wrapper.get('type', 'OptimWrapper')
        if wrapper_type == 'AmpOptimWrapper':
            log('AMP training is already enabled in your config.',
                logger='current',
                level=logging.WARNING)
            return
        assert wrapper_type == 'OptimWrapper', (
            '`--amp` is only supported when the optimizer wrapper type is '
            f'`OptimWrapper`, but got {wrapper_type}.')
        optim_wrapper.type = 'AmpOptimWrapper'
        optim_wrapper.loss_scale = 'dynamic'
        return
    for value in optim_wrapper.values():
        if isinstance(value, dict) and 'type' in value:
            assert value.type in ('OptimWrapper', 'AmpOptimWrapper'), (
                '`--amp` is only supported when the optimizer wrapper type '
                f'is `OptimWrapper`, but got {value.type}.')
            value.type = 'AmpOptimWrapper'
            value.setdefault('loss_scale', 'dynamic')


def enable_auto_scale_lr(cfg: Config) -> None:
    """Enable mmengine's linear LR scaling (``cfg.auto_scale_lr``).

    mmengine's ``Runner`` multiplies the learning rates by
    ``world_size * train_dataloader.batch_size / base_batch_size`` when ``auto_scale_lr.enable`` is
    True.

    Args:
        cfg: The config, modified in place.

    Raises:
        RuntimeError: If the config has no ``auto_scale_lr.base_batch_size``.
    """
    auto_scale_lr = cfg.get('auto_scale_lr')
    if not auto_scale_lr or 'base_batch_size' not in auto_scale_lr:
        raise RuntimeError(
            '`--auto-scale-lr` needs `auto_scale_lr = dict(enable=False, '
            'base_batch_size=<batch size the LR was tuned for>)` in the '
            'config (total batch size over all processes).')
    cfg.auto_scale_lr.enable = True


def main(argv: Optional[list] = None) -> int:
    """Entry point.

    Args:
        argv: Command-line arguments (``sys.argv[1:]`` when None).

    Returns:
        The exit status (1 after a configuration error, printed as one line).
    """
    args = parse_args(argv)

    with quiet_mm_import_warnings():
        from diffir_mm.registration import register_all_modules

        # Register diffir_mm (with mmengine's safe local checkpoint loader) and import the
        # whole mmagic stack now, under the filters, instead of lazily (and noisily) in the
        # first registry build.
        register_all_modules(init_default_scope=False)

    errors = OneLineErrors('train.py', debug=args.debug)
    with errors:
        errors.cfg = cfg = load_config(args.config, args.cfg_options, args.launcher,
                                       ['train_dataloader', 'val_dataloader'])
        train(cfg, args)
    return errors.exit_code


def train(cfg: Config, args: argparse.Namespace) -> None:
    """Build the runner from the loaded ``cfg`` and train.

    Args:
        cfg: The config with ``--cfg-options`` merged.
        args: The parsed command line.
    """
    from mmagic.utils import print_colored_log
    from mmengine.logging import print_log
    from mmengine.runner import Runner

    from diffir_mm.utils.dist import prepare_cpu_distributed

    # work_dir priority: CLI > config > ./work_dirs/<config name>
    if args.work_dir:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])

    if args.amp:
        enable_amp(cfg, print_log)
    if args.auto_scale_lr:
        enable_auto_scale_lr(cfg)
    if args.resume:
        cfg.resume = True

    prepare_cpu_distributed(
        cfg, args.launcher, logger=lambda msg: print_log(msg, 'current'))

    runner = Runner.from_cfg(cfg)

    print_colored_log(f'Working directory: {cfg.work_dir}')
    print_colored_log(f'Log directory: {runner._log_dir}')

    runner.train()
    # Tear the process group down before exit: letting gloo's threads die at interpreter exit
    # occasionally aborts a rank ("terminate called without an active exception").
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()

    print_colored_log(f'Log saved under {runner._log_dir}')
    print_colored_log(f'Checkpoint saved under {cfg.work_dir}')


if __name__ == '__main__':
    keep_freed_memory_unless_disabled()  # large CPU tensors reuse mapped pages
    sys.exit(main())
