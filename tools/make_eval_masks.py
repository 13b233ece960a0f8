"""Write LaMa-style evaluation folders (``<name>_crop000.png`` + ``<name>_crop000_mask000.png``).

The folders that LaMa's ``bin/gen_mask_dataset.py`` writes, made from the same rule, seed and
image decoding as the generated Places evaluation pipeline, so that evaluating the folders
(``test_dataloader_mask_files``) and the generated samples (``test_dataloader``) agree. A thin
wrapper over :func:`diffir_mm.datasets.write_eval_mask_folder`; the seed and crop size come from
the dataset config (``eval_mask_seed``, ``eval_size``). Resumable: run it again to finish.

Examples::

    python tools/make_eval_masks.py data/places_standard_dataset/evaluation/hires \\
        data/places_standard_dataset/evaluation/random_thin_512 --preset thin_512
    python tools/make_eval_masks.py data/places_standard_dataset/evaluation/hires \\
        data/places_standard_dataset/evaluation/random_thick_512 --preset thick_512

Bad input is reported with one ``error: ...`` line on stderr and exit code 1.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional, Sequence

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from diffir_mm.datasets.transforms.masks import MASK_PRESETS  # noqa: E402

PLACES_CONFIG = ROOT / 'configs' / '_base_' / 'datasets' / 'places_inpaint.py'


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Command-line arguments."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('src', help='folder of the source images')
    parser.add_argument('out', help='output folder (new, empty, or one this tool is filling)')
    parser.add_argument('--preset', required=True,
                        choices=[name for name in MASK_PRESETS if name != 'train'],
                        help='evaluation mask preset')
    parser.add_argument('--config', default=str(PLACES_CONFIG),
                        help='dataset config giving eval_mask_seed and eval_size '
                             '(default: %(default)s)')
    parser.add_argument('--recursive', action='store_true', help='also take sub-folders')
    return parser.parse_args(argv)


def _progress(done: int, total: int) -> None:
    if done == total or done % max(1, total // 100) == 0:
        end = '\n' if done == total else ''
        print(f'\r{done}/{total} images', end=end, file=sys.stderr, flush=True)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command-line entry point; returns the exit code."""
    args = parse_args(argv)
    from mmengine import Config
    from diffir_mm.datasets import write_eval_mask_folder
    from diffir_mm.inference.io import ImageIOError
    try:
        cfg = Config.fromfile(args.config)
        seed, size = int(cfg.eval_mask_seed), int(cfg.eval_size)
    except (OSError, AttributeError, KeyError, SyntaxError) as err:
        print(f'error: cannot take eval_mask_seed and eval_size from {args.config}: {err}',
              file=sys.stderr)
        return 1
    try:
        summary = write_eval_mask_folder(args.src, args.out, args.preset, seed, size,
                                         recursive=args.recursive, progress=_progress)
    except (OSError, ValueError, ImageIOError) as err:
        print(f'error: {" ".join(str(err).split())}', file=sys.stderr)
        return 1
    print(f'{args.out}: {summary.written} written, {summary.skipped} already there, '
          f'{len(summary.dropped)} left out (every mask variant covers more than half of its '
          f'crop), preset {args.preset}, seed {seed}, {size}x{size}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
