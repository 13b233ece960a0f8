#!/usr/bin/env python
"""Check the data of a config before training: every file decodable, RGB, and pairs complete.

::

    python tools/check_data.py CONFIG [--cfg-options KEY=VAL ...] [--test] [--workers N]

Lists the samples of every dataset of ``train_dataloader`` and ``val_dataloader`` (plus
``test_dataloader`` with ``--test``) as training will, decodes every file once in ``--workers``
processes (progress bar) and prints every problem, one line each: unreadable files (empty,
truncated, not an image), files that are not plain 8-bit RGB (grayscale, alpha, 16-bit), a GT
without its LQ (or the reverse) and pairs whose sizes the recipe cannot crop (see
:mod:`diffir_mm.datasets.config_checks`). Exit status: 0 nothing found, 1 problems found or a
configuration error (one line).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import List, Optional

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from diffir_mm.utils.config_errors import OneLineErrors, load_config  # noqa: E402
from diffir_mm.utils.parallel import default_workers  # noqa: E402
from diffir_mm.utils.warnings import quiet_mm_import_warnings  # noqa: E402

with quiet_mm_import_warnings():
    from mmengine.config import DictAction


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config', help='the training config')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings (as tools/train.py)')
    parser.add_argument('--test', action='store_true', help='also check test_dataloader')
    parser.add_argument('--workers', type=int, default=min(8, default_workers()),
                        help='worker processes (default: the cores, at most 8)')
    parser.add_argument('--debug', action='store_true', help='show tracebacks')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point; returns the exit status."""
    args = parse_args(argv)
    loaders = ['train_dataloader', 'val_dataloader'] + (['test_dataloader'] if args.test else [])
    errors = OneLineErrors('check_data.py', debug=args.debug)
    with errors:
        with quiet_mm_import_warnings():
            from diffir_mm.datasets.config_checks import check_config_data, describe
            from diffir_mm.datasets.file_checks import format_findings
            from diffir_mm.registration import register_all_modules
            register_all_modules(init_default_scope=True)
        errors.cfg = cfg = load_config(args.config, args.cfg_options, 'none', loaders)
        datasets, findings = check_config_data(cfg, loaders, workers=max(1, args.workers))
        print('\n'.join(describe(datasets)))
        files = len({p for d in datasets for s in d.samples for p in s.values()})
        if findings:
            print('\n'.join(format_findings(findings)))
            print(f'check_data.py: {len(findings)} problem(s) in {files} files')
            return 1
        print(f'check_data.py: {files} files checked, no problem found')
    return errors.exit_code


if __name__ == '__main__':
    sys.exit(main())
