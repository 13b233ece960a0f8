"""``diffir-restore``: restore image files with a DiffIR stage-2 model.

Examples::

    # released deblurring model, a folder of photos, 512-px tiles sharing one global prior
    diffir-restore photos/ -o restored/ --task deblur --checkpoint DiffIRS2-GoPro.pth --tile 512

    # real-world SR x4 of two globs in bf16, side-by-side comparisons next to the results
    diffir-restore 'lr/*.png' 'more/*.jpg' -o sr/ --task sr --scale 4 \
        --checkpoint RealworldSR-DiffIRS2-GANx4.pth --precision bf16 --compare

    # architecture and task read from an mmengine config (data-preprocessor mean/std honoured)
    diffir-restore img.png -o out/ --config configs/diffir_sr_x2_s2.py --checkpoint iter_1000000.pth

    # inpainting: masks (non-zero = hole) with the same file stem in a folder
    diffir-restore imgs/ -o out/ --task inpaint --checkpoint DiffIRS2-celeba.ckpt --mask-dir masks/

Inputs may be files, folders (their image files, not recursive) or glob patterns, several of
each. Models are named as everywhere in diffir_mm: ``--task {deblur,sr,inpaint}``, ``--scale``
(SR, default 4), ``--big`` (inpainting). ``--task`` may be omitted when ``--checkpoint`` is given:
the task and scale are then read from the checkpoint; when given, the checkpoint must hold it.
Without ``--tile`` the output is the official inference's (the prior sees the whole image);
``--prior-max-side`` downscales what the prior sees, by default only in runs cut into tiles.
Results are ``OUT_DIR/<stem><suffix><ext>`` (``--ext`` defaults to the input's
extension); the bit depth, grayscale layout and alpha channel of each input are kept where the
output format allows (see :mod:`diffir_mm.inference.io`). Images of the same size are batched
(``--batch-size``). Seeds: every image uses a generator seeded with ``--seed``, so re-runs are
identical.

Robustness: a problem with one input (missing path, empty folder, unreadable or corrupt file,
unsupported layout, a failure while restoring or writing) is reported as one ``error:`` line on
stderr and the other inputs are still processed; conversions (grayscale, RGBA, 16-bit, padding of
small or odd-sized images) are reported as ``note:`` lines (``-q`` hides them). Outputs are written
atomically and never onto an input file. Exit status: 0 = all restored, 1 = some inputs failed,
2 = nothing could start (bad arguments, config or checkpoint -- e.g. a checkpoint of another task
or scale).

``--backend onnxruntime --onnx X.onnx`` runs an export of ``tools/export_onnx.py`` in ONNX Runtime
(the prior and DIRformer graphs; tiling and the shared prior as with PyTorch; ``--threads`` sets
its intra-op threads).

Inpainting (``--mask`` / ``--mask-dir``) follows the official ``bin/predict.py``: every non-zero
mask value is a hole (colour masks by their luma, as PIL's ``convert('L')``; a ``note:`` says when
a mask is not binary), image and mask are padded symmetrically to a multiple of 8, the output is
``mask * prediction + (1 - mask) * image``; a mask of another size than its image is an
``error:`` line. Unlike the official script, outputs are rounded rather than truncated to 8 bits
(see :mod:`diffir_mm.inference.inpainting`).

``--random-init`` (hidden) runs the released architecture (``--task``) or the config's network
with random weights, without a checkpoint: for tests and benchmarks only.
"""
from __future__ import annotations

import argparse
import glob
import os
import sys
import warnings
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

from diffir_mm.utils.host_memory import keep_freed_memory_unless_disabled

__all__ = ['main', 'build_parser', 'collect_inputs']

EXIT_OK, EXIT_FAILED, EXIT_SETUP = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``diffir-restore``."""
    from diffir_mm.archs import SR_SCALES, TASKS
    from diffir_mm.inference.compilation import COMPILE_CHOICES
    from diffir_mm.inference.precision import PRECISIONS
    from diffir_mm.inference.tiling import DEFAULT_PRIOR_MAX_SIDE, DEFAULT_TILE_OVERLAP

    p = argparse.ArgumentParser(
        prog='diffir-restore', description='Restore images with a DiffIR (ICCV 2023) model.',
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('inputs', nargs='+', metavar='INPUT',
                   help='image files, folders or glob patterns')
    p.add_argument('-o', '--out-dir', required=True, help='output folder')
    model = p.add_mutually_exclusive_group()
    model.add_argument('--task', choices=TASKS,
                       help='released model type (checked against --checkpoint); read from the '
                            'checkpoint if omitted')
    model.add_argument('--config', help='mmengine config whose model.generator is the network')
    p.add_argument('--scale', type=int, choices=SR_SCALES, default=4,
                   help='SR factor of --task sr')
    p.add_argument('--big', action='store_true',
                   help='--task inpaint: the big Places-Challenge model (with --random-init)')
    p.add_argument('--checkpoint', help='official (.pth/.ckpt) or diffir-mm checkpoint')
    p.add_argument('--backend', choices=('pytorch', 'onnxruntime'), default='pytorch',
                   help='onnxruntime: run an export of tools/export_onnx.py (--onnx)')
    p.add_argument('--onnx', help='--backend onnxruntime: the exported X.onnx (X.json beside it)')
    p.add_argument('--tile', type=int, default=0,
                   help='tile side in input pixels (0 = whole image); tiles share one prior')
    p.add_argument('--tile-overlap', type=int, default=DEFAULT_TILE_OVERLAP,
                   help='overlap between tiles (input pixels)')
    p.add_argument('--tile-batch', type=int, default=1, help='tiles per forward')
    p.add_argument('--prior-max-side', type=int, default=None,
                   help='downscale the image the global prior is estimated from when the longest '
                        "side of the prior network's grid exceeds this (changes the result; 0 = "
                        f'never). Default: {DEFAULT_PRIOR_MAX_SIDE} for runs cut into several '
                        'tiles, never without tiling (= the official inference)')
    p.add_argument('--precision', choices=PRECISIONS, default='auto',
                   help='auto = bf16 on CUDA GPUs with bf16 units (Ampere and later), fp32 '
                        'otherwise; fp16/bf16 output with NaN/Inf is recomputed in fp32 (with a '
                        'warning)')
    p.add_argument('--compile', choices=COMPILE_CHOICES, default='auto',
                   help='torch.compile the transformer blocks (pays for many images or tiles of '
                        'one size; every new size compiles again); auto = per device, '
                        'currently off')
    p.add_argument('--seed', type=int, default=0, help='seed of the diffusion start vector')
    p.add_argument('--device', default='auto', help="'cpu', 'cuda', 'cuda:1' or 'auto'")
    p.add_argument('--batch-size', type=int, default=1, help='images of equal size per forward')
    p.add_argument('--threads', type=int, default=0,
                   help='CPU threads for torch or ONNX Runtime (0 = their default)')
    p.add_argument('--ext', help='output format, e.g. png (default: that of each input)')
    p.add_argument('--suffix', default='', help='appended to the output file stem')
    p.add_argument('--compare', action='store_true',
                   help='also write <stem><suffix>_compare<ext>: input (upscaled) | output')
    p.add_argument('--mask', help='inpainting: one mask for every image (non-zero = hole)')
    p.add_argument('--mask-dir', help='inpainting: folder of masks with the images\' stems')
    p.add_argument('--no-progress', action='store_true', help='no progress bar')
    p.add_argument('-q', '--quiet', action='store_true', help='hide note: lines')
    p.add_argument('--random-init', action='store_true', help=argparse.SUPPRESS)
    return p


# ---------------------------------------------------------------------------------------- inputs
def _is_image_name(name: str) -> bool:
    from diffir_mm.inference.io import IMAGE_EXTENSIONS
    return os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def collect_inputs(items: Sequence[str]) -> Tuple[List[str], List[str]]:
    """Expand files / folders / globs into image paths; returns (paths, one-line errors)."""
    files: List[str] = []
    errors: List[str] = []
    for item in items:
        if os.path.isdir(item):
            found = sorted(os.path.join(item, n) for n in os.listdir(item)
                           if _is_image_name(n) and os.path.isfile(os.path.join(item, n)))
            if not found:
                errors.append(f'{item}: folder contains no images')
            files.extend(found)
        elif os.path.exists(item):
            files.append(item)
        elif glob.has_magic(item):
            found = sorted(p for p in glob.glob(item, recursive=True)
                           if os.path.isfile(p) and _is_image_name(p))
            if not found:
                errors.append(f'{item}: no images match this pattern')
            files.extend(found)
        else:
            errors.append(f'{item}: no such file or directory')
    seen, unique = set(), []
    for f in files:
        key = os.path.normcase(os.path.realpath(f))
        if key not in seen:
            seen.add(key)
            unique.append(f)
    return unique, errors


def _one_line(err: BaseException) -> str:
    text = str(err).strip() or type(err).__name__
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[0] if lines else type(err).__name__


@dataclass
class _Item:
    path: str
    out: str
    record: object
    mask: Optional[object] = None
    mask_path: Optional[str] = None
    notes: List[str] = field(default_factory=list)


class _Runner:
    def __init__(self, args: argparse.Namespace, restorer, inputs: List[str]) -> None:
        self.args = args
        self.restorer = restorer
        self.inputs = inputs
        masks = [args.mask] if args.mask else []
        if args.mask_dir and os.path.isdir(args.mask_dir):
            masks += [os.path.join(args.mask_dir, n) for n in os.listdir(args.mask_dir)]
        self.protect = list(inputs) + masks
        self._protect_keys = {_key(p) for p in self.protect}
        self.failed = 0
        self.done = 0
        self.bar = None

    # -- messages
    def _say(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text, file=sys.stderr)
        else:
            print(text, file=sys.stderr, flush=True)

    def error(self, path: str, msg: str) -> None:
        self.failed += 1
        self._say(f'error: {path}: {msg}')

    def note(self, path: str, msg: str) -> None:
        if not self.args.quiet:
            self._say(f'note: {path}: {msg}')

    def warn(self, path: str, msg: str) -> None:
        self._say(f'warning: {path}: {msg}')

    def advance(self, n: int = 1) -> None:
        if self.bar is not None:
            self.bar.update(n)

    # -- planning
    def output_path(self, path: str, suffix: str = '') -> str:
        stem, ext = os.path.splitext(os.path.basename(path))
        if self.args.ext:
            ext = '.' + self.args.ext.lstrip('.').lower()
        return os.path.join(self.args.out_dir, f'{stem}{self.args.suffix}{suffix}{ext}')

    def read_mask(self, path: str):
        from diffir_mm.inference.io import IMAGE_EXTENSIONS, read_image
        if self.args.mask:
            mpath = self.args.mask
        else:
            stem = os.path.splitext(os.path.basename(path))[0]
            cands = [os.path.join(self.args.mask_dir, stem + e) for e in IMAGE_EXTENSIONS]
            cands += [c[:-len(e)] + e.upper() for c, e in zip(cands, IMAGE_EXTENSIONS)]
            mpath = next((c for c in cands if os.path.isfile(c)), None)
            if mpath is None:
                raise ValueError(f'no mask named {stem}.* in {self.args.mask_dir}')
        import numpy as np

        from diffir_mm.inference.inpainting import holes_from_record
        rec = read_image(mpath)
        holes = holes_from_record(rec)
        levels = np.unique(rec.rgb)
        if levels.size > 2 or (levels.size == 2 and levels[0] != 0):
            self.note(path, f'mask {mpath} is not binary ({levels.size} levels): every '
                            'non-zero value is a hole (official rule)')
        return holes.astype('float32'), mpath

    # -- processing
    def run(self, files: List[str]) -> None:
        from diffir_mm.inference.io import ImageIOError, read_image
        try:
            from tqdm import tqdm
            self.bar = tqdm(total=len(files), unit='img', file=sys.stderr, dynamic_ncols=True,
                            disable=True if self.args.no_progress else None)
        except ImportError:  # pragma: no cover - tqdm is a dependency of the test environment
            self.bar = None
        planned: Dict[str, str] = {}
        pending: Dict[Tuple, List[_Item]] = {}
        multiple = self.restorer.input_multiple
        try:
            for path in files:
                out = self.output_path(path)
                key = os.path.normcase(os.path.abspath(out))
                if _key(out) in self._protect_keys or _same(out, path):
                    self.error(path, f'output {out} is an input file; refusing to overwrite it '
                                     '(use another --out-dir, --suffix or --ext)')
                    self.advance()
                    continue
                if key in planned:
                    self.error(path, f'output {out} would also be written for {planned[key]}; '
                                     'skipped (rename one of them or use --suffix)')
                    self.advance()
                    continue
                planned[key] = path
                try:
                    record = read_image(path)
                except ImageIOError as err:
                    self.error(path, _one_line(err))
                    self.advance()
                    continue
                item = _Item(path=path, out=out, record=record)
                for n in record.notes:
                    self.note(path, n)
                h, w = record.size
                if h < multiple or w < multiple:
                    self.note(path, f'{w}x{h} is smaller than the network minimum '
                                    f'{multiple}x{multiple}; padded and cropped back')
                elif h % multiple or w % multiple:
                    how = 'symmetric' if self.restorer.task == 'inpaint' else 'reflect'
                    self.note(path, f'{w}x{h} is not a multiple of {multiple}; padded '
                                    f'({how}) and cropped back')
                if self.restorer.task == 'inpaint':
                    try:
                        mask, mpath = self.read_mask(path)
                    except (ImageIOError, ValueError) as err:
                        self.error(path, f'mask: {_one_line(err)}')
                        self.advance()
                        continue
                    if mask.shape != (h, w):
                        self.error(path, f'mask {mpath} is {mask.shape[1]}x{mask.shape[0]}, '
                                         f'the image {w}x{h}')
                        self.advance()
                        continue
                    item.mask, item.mask_path = mask, mpath
                bucket = pending.setdefault((h, w), [])
                bucket.append(item)
                if len(bucket) >= self.args.batch_size:
                    self.flush(pending.pop((h, w)))
                elif sum(len(v) for v in pending.values()) > 4 * self.args.batch_size:
                    largest = max(pending, key=lambda k: len(pending[k]))
                    self.flush(pending.pop(largest))
            for key in list(pending):
                self.flush(pending.pop(key))
        finally:
            if self.bar is not None:
                self.bar.close()
                self.bar = None

    def _item_protect(self, item: _Item) -> List[str]:
        extra = [item.mask_path] if item.mask_path else []
        return [item.path] + extra + ([self.args.mask] if self.args.mask else [])

    def _tile_progress(self, done: int, total: int) -> None:
        if self.bar is not None and total > 1:
            self.bar.set_postfix_str(f'tiles {done}/{total}')

    def flush(self, items: List[_Item]) -> None:
        from diffir_mm.inference.precision import PrecisionFallbackWarning
        if not items:
            return
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter('always', PrecisionFallbackWarning)
            try:
                masks = [it.mask for it in items] if items[0].mask is not None else None
                outs = self.restorer.restore_batch([it.record.rgb for it in items], masks=masks,
                                                   progress=self._tile_progress)
            except Exception as err:  # noqa: BLE001 - one bad batch must not stop the run
                if len(items) > 1:
                    for it in items:
                        self.flush([it])
                    return
                self.error(items[0].path, f'restoration failed: {type(err).__name__}: '
                                          f'{_one_line(err)}')
                self.advance()
                return
        seen = set()
        for w in caught:
            if issubclass(w.category, PrecisionFallbackWarning):
                text = str(w.message)
                if text not in seen:  # one line per batch, however many tiles fell back
                    seen.add(text)
                    self.warn(', '.join(it.path for it in items), text)
            else:
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        for it, out in zip(items, outs):
            self.write(it, out)
            self.advance()

    def write(self, item: _Item, out) -> None:
        from diffir_mm.inference.io import side_by_side, write_image
        notes: List[str] = []
        try:
            write_image(item.out, out, item.record, protect=self._item_protect(item),
                        notes=notes)
        except Exception as err:  # noqa: BLE001
            self.error(item.path, f'cannot write {item.out}: {_one_line(err)}')
            return
        for n in notes:
            self.note(item.path, n)
        self.done += 1
        if self.args.compare:
            cmp_path = self.output_path(item.path, '_compare')
            try:
                rec = _copy_record(item.record, alpha=None)
                if _key(cmp_path) in self._protect_keys:
                    raise ValueError('the comparison path is an input file')
                write_image(cmp_path, side_by_side(item.record.rgb, out), rec,
                            protect=self._item_protect(item))
            except Exception as err:  # noqa: BLE001
                self.error(item.path, f'cannot write {cmp_path}: {_one_line(err)}')


def _copy_record(record, **changes):
    import dataclasses
    return dataclasses.replace(record, **changes)


def _key(path: str) -> str:
    return os.path.normcase(os.path.realpath(path))


def _same(a: str, b: str) -> bool:
    from diffir_mm.inference.io import same_path
    return same_path(a, b)


def _build_restorer(args: argparse.Namespace):
    from diffir_mm.inference.restorer import Restorer
    common = dict(device=args.device, precision=args.precision, tile=args.tile or None,
                  tile_overlap=args.tile_overlap, tile_batch=args.tile_batch, seed=args.seed,
                  prior_max_side=args.prior_max_side)
    if args.backend == 'onnxruntime':
        from diffir_mm.deploy.onnx_runtime import OnnxRestorer
        return OnnxRestorer(args.onnx, threads=args.threads, task=args.task, scale=args.scale,
                            **common)
    common['compile'] = args.compile
    if args.config:
        return Restorer.from_config(args.config, args.checkpoint, random_init=args.random_init,
                                    **common)
    if args.checkpoint:
        return Restorer.from_checkpoint(args.checkpoint, task=args.task, scale=args.scale,
                                        **common)
    if args.task and args.random_init:
        return Restorer.from_preset(args.task, args.scale, args.big, random_init=True, **common)
    raise ValueError('--checkpoint is required' if args.task or args.config
                     else 'give --checkpoint (and optionally --task) or --config')


def _validate(args: argparse.Namespace) -> Optional[str]:
    if args.tile < 0:
        return '--tile must be >= 0'
    if args.tile_overlap < 0:
        return '--tile-overlap must be >= 0'
    if args.tile and args.tile_overlap >= args.tile:
        return f'--tile-overlap ({args.tile_overlap}) must be smaller than --tile ({args.tile})'
    if args.tile_batch < 1 or args.batch_size < 1:
        return '--tile-batch and --batch-size must be >= 1'
    if args.big and args.task != 'inpaint':
        return '--big applies to --task inpaint only'
    if args.prior_max_side is not None and args.prior_max_side < 0:
        return '--prior-max-side must be >= 0'
    if args.mask and args.mask_dir:
        return 'give either --mask or --mask-dir'
    if args.backend == 'onnxruntime':
        if not args.onnx:
            return '--backend onnxruntime needs --onnx X.onnx (from tools/export_onnx.py)'
        clash = [flag for flag, value in (('--checkpoint', args.checkpoint),
                                          ('--config', args.config),
                                          ('--random-init', args.random_init)) if value]
        if clash:
            return f'{clash[0]} does not apply to --backend onnxruntime (the weights are in --onnx)'
        if args.compile == 'on':
            return '--compile on applies to the pytorch backend'
    elif args.onnx:
        return '--onnx needs --backend onnxruntime'
    if args.mask and not os.path.isfile(args.mask):
        return f'--mask {args.mask}: no such file'
    if args.mask_dir and not os.path.isdir(args.mask_dir):
        return f'--mask-dir {args.mask_dir}: no such folder'
    if args.ext:
        import cv2
        if not cv2.haveImageWriter('x.' + args.ext.lstrip('.')):
            return f'--ext {args.ext}: OpenCV cannot write this format'
    if args.out_dir and os.path.exists(args.out_dir) and not os.path.isdir(args.out_dir):
        return f'--out-dir {args.out_dir} exists and is not a folder'
    return None


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run ``diffir-restore``; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    problem = _validate(args)
    if problem:
        print(f'error: {problem}', file=sys.stderr)
        return EXIT_SETUP
    if args.threads > 0:
        import torch
        torch.set_num_threads(args.threads)
    keep_freed_memory_unless_disabled()  # large CPU tensors reuse mapped pages (issue 14)
    try:
        restorer = _build_restorer(args)
    except Exception as err:  # noqa: BLE001 - report setup problems in one line
        print(f'error: {_one_line(err)}', file=sys.stderr)
        return EXIT_SETUP
    if restorer.task == 'inpaint' and not (args.mask or args.mask_dir):
        print('error: inpainting needs --mask or --mask-dir', file=sys.stderr)
        return EXIT_SETUP
    if restorer.task != 'inpaint' and (args.mask or args.mask_dir):
        print(f'error: --mask/--mask-dir only apply to inpainting (model: {restorer.task})',
              file=sys.stderr)
        return EXIT_SETUP
    files, errors = collect_inputs(args.inputs)
    runner = _Runner(args, restorer, files)
    for e in errors:
        runner.failed += 1
        print(f'error: {e}', file=sys.stderr)
    if not args.quiet:
        print(f'{restorer.describe()}; {len(files)} image(s) -> {args.out_dir}', file=sys.stderr)
    if files:
        try:
            os.makedirs(args.out_dir, exist_ok=True)
        except OSError as err:
            print(f'error: cannot create {args.out_dir}: {err.strerror or err}', file=sys.stderr)
            return EXIT_SETUP
        try:
            runner.run(files)
        except KeyboardInterrupt:
            print('interrupted', file=sys.stderr)
            return 130
    else:
        print('error: no images to process', file=sys.stderr)
        return EXIT_FAILED
    print(f'done: {runner.done} restored, {runner.failed} failed', file=sys.stderr)
    return EXIT_FAILED if runner.failed else EXIT_OK


if __name__ == '__main__':  # pragma: no cover
    sys.exit(main())
