#!/usr/bin/env python
"""Test (and evaluate) a diffir_mm (MMagic) model with mmengine's ``Runner``.

Same command line as MMagic 1.2.0's ``tools/test.py``::

    python tools/test.py CONFIG CHECKPOINT [--out metrics.json]
        [--work-dir DIR] [--cfg-options KEY=VAL ...]
        [--launcher {none,pytorch,slurm,mpi}] [--local-rank N]

The config needs ``test_dataloader``, ``test_evaluator`` and
``test_cfg = dict(type='MultiTestLoop')``. ``--out`` writes the metrics (JSON/YAML/pickle by
extension) from rank 0. Like ``tools/train.py`` it puts the repository root on ``sys.path``, imports
``diffir_mm``, silences third-party import warnings, reads checkpoints safely (through
:mod:`diffir_mm.checkpoint`) and works with distributed launchers on CPU.
"""
import argparse
import os
import os.path as osp
import sys
from typing import Optional

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

from diffir_mm.utils.config_errors import (OneLineErrors, UserConfigError,  # noqa: E402
                                           load_config)
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
    parser = argparse.ArgumentParser(description='Test (and eval) a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--out', help='the file to save metric results.')
    parser.add_argument(
        '--work-dir',
        help='the directory to save the file containing evaluation metrics')
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
        # whole mmagic stack now, under the filters.
        register_all_modules(init_default_scope=False)

    errors = OneLineErrors('test.py', debug=args.debug)
    with errors:
        if not osp.isfile(args.checkpoint):
            raise UserConfigError(f'checkpoint not found: {args.checkpoint} (the CHECKPOINT '
                                  'argument)')
        errors.cfg = cfg = load_config(args.config, args.cfg_options, args.launcher,
                                       ['test_dataloader'])
        run_test(cfg, args)
    return errors.exit_code


def run_test(cfg: Config, args: argparse.Namespace) -> None:
    """Build the runner from the loaded ``cfg`` and run the test loop.

    Args:
        cfg: The config with ``--cfg-options`` merged.
        args: The parsed command line.
    """
    import mmengine
    from mmagic.utils import print_colored_log
    from mmengine.dist import is_main_process
    from mmengine.hooks import Hook
    from mmengine.logging import print_log
    from mmengine.runner import Runner

    from diffir_mm.utils.dist import close_process_group, prepare_cpu_distributed

    # work_dir priority: CLI > config > ./work_dirs/<config name>
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])

    cfg.load_from = args.checkpoint
    # Testing never needs the training set. Without this, MMagic's visualization hook asks the
    # runner for its iteration, which builds the training loop and its dataset.
    for key in ('train_dataloader', 'train_cfg', 'optim_wrapper', 'param_scheduler'):
        cfg[key] = None

    prepare_cpu_distributed(
        cfg, args.launcher, logger=lambda msg: print_log(msg, 'current'))

    runner = Runner.from_cfg(cfg)

    print_colored_log(f'Working directory: {cfg.work_dir}')
    print_colored_log(f'Log directory: {runner._log_dir}')

    if args.out:
        out_file = osp.abspath(args.out)

        class SaveMetricHook(Hook):
            """Dump the test metrics to ``--out`` (rank 0 only)."""

            def after_test_epoch(self, runner, metrics=None) -> None:
                """Write ``metrics`` when the test epoch ends.

                Args:
                    runner: The runner.
                    metrics: The evaluation results.
                """
                if metrics is not None and is_main_process():
                    out_dir = osp.dirname(out_file)
                    if out_dir:
                        os.makedirs(out_dir, exist_ok=True)
                    mmengine.dump(metrics, out_file)

        runner.register_hook(SaveMetricHook(), 'LOWEST')

    runner.test()
    del runner  # its DDP wrapper holds the process group
    close_process_group()

    if args.out:
        print_colored_log(f'Metrics written to {osp.abspath(args.out)}')


if __name__ == '__main__':
    keep_freed_memory_unless_disabled()  # large CPU tensors reuse mapped pages
    status = main()
    from diffir_mm.utils.dist import exit_process
    exit_process(status, distributed=os.environ.get('WORLD_SIZE', '1') != '1')
