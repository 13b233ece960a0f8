#!/usr/bin/env python
"""Prepare training data: the paper's datasets in the recipes' layouts, or your own folders.

One command per layout (``python tools/prepare_data.py LAYOUT --help`` for the options)::

    # your own data (fine-tuning, see docs/user_guides/own_data.md)
    python tools/prepare_data.py images photos/ data/my_photos --val-ratio 0.1
    python tools/prepare_data.py pairs blurry/ sharp/ data/my_pairs --crop 256
    # the paper's datasets
    python tools/prepare_data.py gopro GoPro_download/ data/GoPro
    python tools/prepare_data.py df2k --hr DIV2K_train_HR Flickr2K_HR --ost OST/ data/DF2K_OST
    python tools/prepare_data.py celebahq data256x256/ data/celeba-hq-dataset --flists fetch_data/
    python tools/prepare_data.py places --train data_large/ --val-large val_large/ \\
        --test-large test_large/ data/places_standard_dataset

Every layout reads only its inputs and writes only under the output folder (refused when it
overlaps an input), writes each file atomically, skips what an earlier run completed (rerun the
same command after an interruption), works in ``--workers`` processes with a progress bar and
ends with a summary: files per folder, inputs left out and why. Unreadable inputs are listed by
the checker of ``tools/check_data.py`` (:mod:`diffir_mm.datasets.file_checks`).
Exit status: 0 done, 1 error (one line), 2 done but inputs were left out and ``--strict``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import List, Optional

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from diffir_mm.utils.config_errors import OneLineErrors  # noqa: E402
from diffir_mm.utils.parallel import default_workers  # noqa: E402
from diffir_mm.utils.warnings import quiet_mm_import_warnings  # noqa: E402

#: The dataset base holding the evaluation-mask seed of the inpainting recipes.
LAMA_BASE = Path(__file__).resolve().parents[1] / 'configs' / '_base_' / 'datasets' / \
    'lama_inpaint.py'


def places_eval_mask_writer():
    """The Places evaluation-mask folders as the recipe's generated test samples make them.

    :func:`diffir_mm.datasets.write_eval_mask_folder` (the samples of ``LamaEvalSample``, as
    ``tools/make_eval_masks.py`` writes them) with the recipes' ``eval_mask_seed``; the crop
    side is the preset's (``thin_512`` -> 512). An
    :data:`~diffir_mm.datasets.preparation.lama.EvalMaskWriter`.
    """
    from mmengine import Config

    from diffir_mm.datasets import write_eval_mask_folder

    seed = int(Config.fromfile(str(LAMA_BASE)).eval_mask_seed)

    def write(images: str, out: str, preset: str) -> None:
        write_eval_mask_folder(images, out, preset, seed, int(preset.rsplit('_', 1)[1]))
    return write


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--workers', type=int, default=min(8, default_workers()),
                        help='worker processes (default: the cores, at most 8)')
    parser.add_argument('--strict', action='store_true',
                        help='exit with status 2 when an input was left out')
    parser.add_argument('--debug', action='store_true', help='show tracebacks')


def _link(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--link', choices=['copy', 'hardlink', 'symlink'], default='copy',
                        help='how files that are not changed are written (default: copy)')


def _split(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--val-ratio', type=float, default=0.1,
                        help='share held out for validation (default 0.1)')
    parser.add_argument('--seed', type=int, default=0, help='seed of the split (default 0)')


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    sub = parser.add_subparsers(dest='layout', required=True, metavar='LAYOUT')

    images = sub.add_parser('images', help='a folder of images -> train/ and val/')
    images.add_argument('src', type=Path, help='your images')
    images.add_argument('out', type=Path, help='output folder (the config data_root)')
    images.add_argument('--recursive', action='store_true', help='also take sub-folders')
    images.add_argument('--min-size', type=int, default=0,
                        help='leave out images whose shorter side is smaller (the patch size)')
    _split(images)

    pairs = sub.add_parser('pairs', help='LQ and GT folders -> {train,val}/{input,target}')
    pairs.add_argument('lq', type=Path, help='degraded images')
    pairs.add_argument('gt', type=Path, help='clean images, same file names')
    pairs.add_argument('out', type=Path, help='output folder (the config data_root)')
    pairs.add_argument('--scale', type=int, default=1, help='GT size / LQ size (default 1)')
    pairs.add_argument('--crop', type=int, default=0,
                       help="the recipe's GT training patch: smaller pairs are left out")
    _split(pairs)

    gopro = sub.add_parser('gopro', help='GoPro download -> 512 crops and test pairs')
    gopro.add_argument('src', type=Path, help='the download (holding train/ and test/)')
    gopro.add_argument('out', type=Path, help='output folder (recipe: data/GoPro)')
    gopro.add_argument('--patch', type=int, default=512, help='crop size (official 512)')
    gopro.add_argument('--overlap', type=int, default=256, help='crop overlap (official 256)')
    _link(gopro)

    df2k = sub.add_parser('df2k', help='DF2K (+ OST) -> multiscale set, sub-images, meta file')
    df2k.add_argument('--hr', type=Path, nargs='+', required=True,
                      help='DF2K HR folders (DIV2K_train_HR, Flickr2K_HR)')
    df2k.add_argument('--ost', type=Path, help='OST training images (searched recursively)')
    df2k.add_argument('out', type=Path, help='output folder (recipe: data/DF2K_OST)')
    df2k.add_argument('--no-multiscale', action='store_true', help='skip the multiscale set')
    df2k.add_argument('--crop', type=int, default=400, help='sub-image size (official 400)')
    df2k.add_argument('--step', type=int, default=200, help='sub-image stride (official 200)')

    celeba = sub.add_parser('celebahq', help="CelebA-HQ 256 -> LaMa's layout")
    celeba.add_argument('src', type=Path, help='data256x256 (00001.jpg ... 30000.jpg)')
    celeba.add_argument('out', type=Path, help='output folder (recipe: data/celeba-hq-dataset)')
    celeba.add_argument('--flists', type=Path, required=True,
                        help="LaMa's fetch_data folder (train_shuffled.flist, val_shuffled.flist)")
    celeba.add_argument('--seed', type=int, default=0, help='seed of the validation draw')
    celeba.add_argument('--val-count', type=int, default=2000, help='validation images (2000)')
    _link(celeba)

    places = sub.add_parser('places', help="Places2-Standard -> LaMa's layout")
    places.add_argument('--train', type=Path, required=True,
                        help='train_large_places365standard (searched recursively)')
    places.add_argument('--val-large', type=Path, required=True, help='val_large images')
    places.add_argument('--test-large', type=Path, required=True, help='test_large images')
    places.add_argument('out', type=Path, help='output folder (data/places_standard_dataset)')
    places.add_argument('--seed', type=int, default=0, help='seed of the samples')
    places.add_argument('--val-count', type=int, default=2000, help='val_hires size (2000)')
    places.add_argument('--visual-count', type=int, default=100, help='visual_test_hires (100)')
    places.add_argument('--eval-count', type=int, default=30000,
                        help='evaluation/hires size (30000)')
    places.add_argument('--no-eval-masks', action='store_true',
                        help='skip evaluation/random_{thin,thick}_512 (the test pipelines '
                        'generate the same samples on the fly)')
    _link(places)

    for layout in (images, pairs, gopro, df2k, celeba, places):
        _common(layout)
    return parser.parse_args(argv)


def run(args: argparse.Namespace):
    """Run the chosen layout; returns its summary."""
    with quiet_mm_import_warnings():  # diffir_mm.datasets imports MMagic
        from diffir_mm.datasets import preparation as prep

    workers = max(1, args.workers)
    if args.layout == 'images':
        return prep.prepare_images(args.src, args.out, args.val_ratio, args.seed,
                                   args.recursive, args.min_size, workers)
    if args.layout == 'pairs':
        return prep.prepare_pairs(args.lq, args.gt, args.out, args.val_ratio, args.seed,
                                  args.scale, args.crop, workers)
    if args.layout == 'gopro':
        return prep.prepare_gopro(args.src, args.out, args.patch, args.overlap, workers,
                                  args.link)
    if args.layout == 'df2k':
        return prep.prepare_df2k(args.hr, args.out, args.ost, not args.no_multiscale,
                                 args.crop, args.step, workers=workers)
    if args.layout == 'celebahq':
        # no writer yet: the CelebA-HQ evaluators draw GenerateInpaintingMask masks on the whole
        # image, which write_eval_mask_folder (LaMa's crop-and-drop rule) does not reproduce
        return prep.prepare_celebahq(args.src, args.out, args.flists, args.seed,
                                     args.val_count, workers, args.link)
    masks = None if args.no_eval_masks else places_eval_mask_writer()
    return prep.prepare_places(args.train, args.val_large, args.test_large, args.out,
                               args.seed, args.val_count, args.visual_count, args.eval_count,
                               workers, args.link, write_eval_masks=masks)


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point; returns the exit status."""
    args = parse_args(argv)
    errors = OneLineErrors('prepare_data.py', debug=args.debug)
    with errors:
        summary = run(args)
        print('\n'.join(summary.lines(str(args.out))))
        if args.strict and summary.problems:
            return 2
    return errors.exit_code


if __name__ == '__main__':
    sys.exit(main())
