#!/usr/bin/env python
"""Train a diffir_mm (MMagic) model with mmengine's ``Runner``.

Same command line as MMagic 1.2.0's ``tools/train.py``::

    python tools/train.py CONFIG [--work-dir DIR] [--resume] [--amp [{bf16,fp16}]]
        [--auto-scale-lr] [--cfg-options KEY=VAL ...]
        [--launcher {none,pytorch,slurm,mpi}] [--local-rank N]

Differences from MMagic's script:

* the repository root is put on ``sys.path`` and ``diffir_mm`` is imported (configs also carry
  ``custom_imports``);
* third-party import-time warnings are silenced (scoped filters, see
  :mod:`diffir_mm.utils.warnings`);
* ``--auto-scale-lr`` works: it enables ``cfg.auto_scale_lr`` (the config must define
  ``auto_scale_lr.base_batch_size``);
* ``--amp`` trains in bf16 mixed precision (mmengine's ``AmpOptimWrapper`` with
  ``dtype='bfloat16'`` and no loss scaling), the sensible default on Ampere and Hopper GPUs;
  ``--amp fp16`` is MMagic's float16 with dynamic loss scaling. The config key ``amp = 'bf16'``
  (or ``'fp16'``) does the same without the flag; the flag wins (:func:`enable_amp`);
* ``--resume`` works on torch>=2.6 with safe loading kept on: mmengine reads local checkpoints
  through :mod:`diffir_mm.checkpoint` (:mod:`diffir_mm.engine.checkpoint_loader`, registered with
  diffir_mm); an empty or broken ``last_checkpoint`` falls back to the newest loadable checkpoint
  (:mod:`diffir_mm.engine.resume`);
* resuming is exact when the config declares
  :class:`diffir_mm.engine.random_state_hook.RandomStateCheckpointHook` (the runtime base does, in
  ``default_hooks``);
* distributed launchers work on CPU-only machines (``gloo``, see :mod:`diffir_mm.utils.dist`);
* ``--plan [--memory 24G]`` trains nothing: it measures the peak memory per device of the config's
  training step (fp32 / bf16, with / without ``with_cp``) with short dry runs on this device and
  prints the largest batch that fits (:mod:`diffir_mm.utils.memory_plan`).
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

from diffir_mm.utils.config_errors import (OneLineErrors, UserConfigError,  # noqa: E402
                                           load_config)
from diffir_mm.utils.host_memory import keep_freed_memory_unless_disabled  # noqa: E402
from diffir_mm.utils.warnings import quiet_mm_import_warnings  # noqa: E402

with quiet_mm_import_warnings():
    from mmengine.config import Config, DictAction

#: ``--amp`` choices; ``--amp`` alone is bf16.
AMP_PRECISIONS = ('bf16', 'fp16')
#: Accepted spellings of the config key ``amp``.
AMP_ALIASES = {'bf16': 'bf16', 'bfloat16': 'bf16', 'fp16': 'fp16', 'float16': 'fp16'}


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
        nargs='?',
        const='bf16',
        default=None,
        choices=AMP_PRECISIONS,
        help='mixed-precision training: bf16 (the default of --amp: no loss '
        'scaling, Ampere/Hopper GPUs) or fp16 (dynamic loss scaling); the '
        "config key amp='bf16'/'fp16' does the same")
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
        '--plan',
        action='store_true',
        help='measure the peak memory per device of this training (fp32/bf16, with_cp '
        'off/on) with short dry runs on this device instead of training')
    parser.add_argument(
        '--memory',
        help='with --plan: the memory of one device (e.g. 24G) to find the largest batch for')
    parser.add_argument(
        '--plan-iters', type=int, default=3,
        help='with --plan: iterations of each dry run (default 3)')
    parser.add_argument(
        '--debug',
        action='store_true',
        help='show the traceback of configuration errors (also: DIFFIR_DEBUG=1)')
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def amp_wrapper(precision: str) -> dict:
    """The ``AmpOptimWrapper`` settings of ``precision`` (``'bf16'`` or ``'fp16'``).

    bf16 keeps fp32's exponent range, so gradients need no loss scaling: the
    scaler is switched off (no scaling, no overflow checks, no host sync).
    fp16 keeps MMagic's dynamic loss scaling.
    """
    if precision == 'bf16':
        return dict(type='AmpOptimWrapper', dtype='bfloat16',
                    loss_scale=dict(enabled=False))
    return dict(type='AmpOptimWrapper', dtype='float16', loss_scale='dynamic')


def amp_precision(cfg: Config, flag: Optional[str]) -> Optional[str]:
    """The mixed precision asked for: ``--amp`` first, else the config's ``amp``.

    Raises:
        UserConfigError: An ``amp`` config value other than None, bf16 or fp16.
    """
    if flag:
        return flag
    value = cfg.get('amp', None)
    if value in (None, False):
        return None
    name = AMP_ALIASES.get(str(value).lower()) if value is not True else 'bf16'
    if name is None:
        raise UserConfigError(f"amp={value!r}: use amp='bf16' or amp='fp16' (or None)")
    return name


def enable_amp(cfg: Config, log: Callable[..., Any], precision: str = 'bf16') -> None:
    """Turn every ``OptimWrapper`` into the ``AmpOptimWrapper`` of ``precision``.

    Handles a single wrapper and ``MultiOptimWrapperConstructor`` configs (one wrapper per
    sub-module: GAN and inpainting editors).

    Args:
        cfg: The config, modified in place.
        log: ``print_log``-like logging function.
        precision: ``'bf16'`` or ``'fp16'`` (see :func:`amp_wrapper`).

    Raises:
        UserConfigError: A wrapper type other than ``OptimWrapper``.
    """
    settings = amp_wrapper(precision)
    optim_wrapper = cfg.optim_wrapper
    constructor = optim_wrapper.get('constructor',
                                    'DefaultOptimWrapperConstructor')
    if constructor == 'DefaultOptimWrapperConstructor':
        wrappers = {'optim_wrapper': optim_wrapper}
    else:
        wrappers = {f'optim_wrapper.{name}': value
                    for name, value in optim_wrapper.items()
                    if isinstance(value, dict) and 'type' in value}
    for key, wrapper in wrappers.items():
        wrapper_type = wrapper.get('type', 'OptimWrapper')
        if wrapper_type == 'AmpOptimWrapper':
            log(f'AMP training is already enabled in your config ({key}).',
                logger='current',
                level=logging.WARNING)
            continue
        if wrapper_type != 'OptimWrapper':
            raise UserConfigError(
                f'--amp needs {key}.type OptimWrapper (it becomes '
                f'AmpOptimWrapper), got {wrapper_type}')
        wrapper.update(settings)


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
        if args.plan:
            errors.cfg = cfg = load_config(args.config, args.cfg_options, args.launcher, [])
            plan(cfg, args)
            return errors.exit_code
        errors.cfg = cfg = load_config(args.config, args.cfg_options, args.launcher,
                                       ['train_dataloader', 'val_dataloader'])
        train(cfg, args)
    return errors.exit_code


def plan(cfg: Config, args: argparse.Namespace) -> None:
    """``--plan``: measure the config's memory per device and print the table.

    Args:
        cfg: The config with ``--cfg-options`` merged.
        args: The parsed command line.
    """
    from diffir_mm.utils.config_errors import UserConfigError
    from diffir_mm.utils.memory_plan import format_plan, parse_memory, run_plan

    try:
        budget = parse_memory(args.memory) if args.memory else None
    except ValueError as err:
        raise UserConfigError(f'--memory: {err}') from None
    result = run_plan(args.config, args.cfg_options, cfg, budget, iters=args.plan_iters,
                      log=lambda msg: print(msg, file=sys.stderr, flush=True))
    print('\n'.join(format_plan(result, args.config)))


def train(cfg: Config, args: argparse.Namespace) -> None:
    """Build the runner from the loaded ``cfg`` and train.

    Args:
        cfg: The config with ``--cfg-options`` merged.
        args: The parsed command line.
    """
    from mmagic.utils import print_colored_log
    from mmengine.logging import print_log
    from mmengine.runner import Runner

    from diffir_mm.utils.dist import close_process_group, prepare_cpu_distributed

    # work_dir priority: CLI > config > ./work_dirs/<config name>
    if args.work_dir:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])

    precision = amp_precision(cfg, args.amp)
    if precision:
        import torch
        if not torch.cuda.is_available():
            raise UserConfigError(
                f'mixed-precision training ({precision}) needs a CUDA device '
                "(mmengine's AmpOptimWrapper); drop --amp / amp= on the CPU")
        enable_amp(cfg, print_log, precision)
        print_log(f'mixed-precision training: {precision} '
                  f'({amp_wrapper(precision)["dtype"]})', 'current')
    if args.auto_scale_lr:
        enable_auto_scale_lr(cfg)
    if args.resume:
        cfg.resume = True
        if cfg.get('load_from') is None:  # pointer's target, or the newest loadable checkpoint
            from diffir_mm.engine.resume import resume_checkpoint
            cfg.load_from = resume_checkpoint(cfg.work_dir, lambda msg: print_log(msg, 'current'))
            cfg.resume = cfg.load_from is not None

    prepare_cpu_distributed(
        cfg, args.launcher, logger=lambda msg: print_log(msg, 'current'))

    runner = Runner.from_cfg(cfg)

    print_colored_log(f'Working directory: {cfg.work_dir}')
    print_colored_log(f'Log directory: {runner._log_dir}')

    runner.train()
    log_dir = runner._log_dir
    del runner  # its DDP wrappers hold the process group
    close_process_group()

    print_colored_log(f'Log saved under {log_dir}')
    print_colored_log(f'Checkpoint saved under {cfg.work_dir}')


if __name__ == '__main__':
    keep_freed_memory_unless_disabled()  # large CPU tensors reuse mapped pages
    status = main()
    from diffir_mm.utils.dist import exit_process
    exit_process(status, distributed=os.environ.get('WORLD_SIZE', '1') != '1')
