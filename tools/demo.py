#!/usr/bin/env python
"""The whole two-stage DiffIR recipe on a CPU in a few minutes (``make demo``).

The demo runs every step of the bicubic x4 super-resolution recipe
(``configs/diffir_sisr_x4_s1.py`` then ``configs/diffir_sisr_x4_s2.py``) on
photos that ship with scikit-image, with a small DiffIR:

1. **data** -- the training photos are cut into HR sub-images and their LR
   counterparts are made with MATLAB-like bicubic /4 (MMagic's
   ``MATLABLikeResize``, as for DF2K); two held-out photos form the test set;
2. **configs** -- configs derived from the real ones are written to
   ``<out-dir>/configs`` (small generator, short schedule, this dataset);
3. **stage 1** and **stage 2** -- trained with ``tools/train.py``; the
   iterations, losses and ETA are shown as they come;
4. **test** -- ``tools/test.py --out`` measures PSNR / SSIM on the Y channel
   with a 4-pixel border crop (MMagic's ``PSNR`` / ``SSIM``) per held-out
   photo;
5. **baseline** -- bicubic x4 upsampling of the same LR inputs, scored by the
   same MMagic metric classes on the same tensors;
6. **inference** -- one held-out photo is restored through
   ``MMagicInferencer('diffir', model_config=..., model_ckpt=...)``;
7. **report** -- ``comparison.png`` (LQ / bicubic / DiffIR / GT),
   ``metrics.json`` and a results table on the terminal.

Usage::

    python tools/demo.py [--out-dir demo_out] [--quick] [--iters-s1 N]
        [--iters-s2 N] [--threads N] [--force]

The default run takes about 6 minutes on two cores (1000 + 600 iterations)
and beats bicubic by about 0.6 dB PSNR-Y; ``--quick`` runs every step with a
few iterations (under a minute; the model then does not beat bicubic).

The output folder is marked as the demo's own (``.diffir_demo``); a non-empty
folder without that mark is refused unless ``--force`` is given. Nothing is
written outside it. ``--threads`` defaults to 1: the small model's kernels are
tiny, and a second OpenMP thread made stage 2 tens of times slower on a busy
two-core machine.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import logging
import os
import os.path as osp
import re
import shutil
import subprocess
import sys
import time
import warnings
from dataclasses import asdict, dataclass, field
from typing import Callable, ContextManager, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)
# albumentations (imported by mmagic.datasets) checks PyPI for a newer
# version on import; the demo must not touch the network.
os.environ.setdefault('NO_ALBUMENTATIONS_UPDATE', '1')

#: File that marks an output folder as created by this demo.
MARKER = '.diffir_demo'
#: What the demo writes inside the output folder (cleared on a re-run).
OUTPUTS = ('data', 'configs', 'work_dirs', 'logs', 'results', 'comparison.png',
           'metrics.json')
SCALE = 4
#: Border cropped by the metrics (the official SISR test protocol).
CROP_BORDER = 4
#: scikit-image photos (all load offline). ``motorcycle_left`` is the left
#: view of ``skimage.data.stereo_motorcycle()``.
TRAIN_PHOTOS = ('astronaut', 'rocket', 'motorcycle_left', 'immunohistochemistry',
                'camera', 'coins', 'page', 'clock')
TEST_PHOTOS = ('chelsea', 'coffee')
#: The held-out photo restored through the inferencer and shown in the figure.
SHOWCASE = 'chelsea'


# ---------------------------------------------------------------------------
# settings
# ---------------------------------------------------------------------------
@dataclass
class DemoSettings:
    """Everything that shapes the demo's training run.

    Attributes:
        arch: Generator overrides (the small DiffIR), shared by both stages.
        iters_s1: Stage-1 iterations.
        iters_s2: Stage-2 iterations (warm-up included).
        encoder_iters: Stage-2 warm-up iterations (CPEN_S2 + denoiser only).
        batch_size: Training batch size.
        gt_patch: Training GT patch side (the LR patch is ``gt_patch // 4``).
        lr_s1: Peak learning rate of stage 1 (cosine decay to 1%).
        lr_warmup: Stage-1 linear learning-rate warm-up iterations.
        lr_s2: Peak learning rate of stage 2 (both optimizers).
        ema_momentum: EMA weight of the current parameters per step.
        ema_start: Fraction of each stage after which the EMA starts averaging
            (before, the EMA copy follows the weights).
        log_interval: Iterations between two log lines.
        seed: ``randomness.seed`` of both stages.
        sub_image: Side of the HR sub-images cut from the training photos.
        sub_stride: Stride of that cut.
        train_photos: Photos cut into training pairs.
        test_photos: Held-out photos (whole, mod-cropped).
    """

    arch: Dict[str, object] = field(default_factory=lambda: dict(
        dim=16, num_blocks=[1, 1, 1, 1], num_refinement_blocks=1, heads=[1, 2, 4, 8],
        ffn_expansion_factor=2.0, n_encoder_res=1))
    iters_s1: int = 1000
    iters_s2: int = 600
    encoder_iters: int = 100
    batch_size: int = 8
    gt_patch: int = 64
    lr_s1: float = 1e-3
    lr_warmup: int = 50
    lr_s2: float = 5e-4
    ema_momentum: float = 0.02
    ema_start: float = 0.6
    log_interval: int = 25
    seed: int = 2023
    sub_image: int = 128
    sub_stride: int = 112
    train_photos: Tuple[str, ...] = TRAIN_PHOTOS
    test_photos: Tuple[str, ...] = TEST_PHOTOS

    @property
    def s1_warmup(self) -> int:
        """Stage-1 learning-rate warm-up, at most half of the stage."""
        return min(self.lr_warmup, self.iters_s1 // 2)

    @classmethod
    def quick(cls) -> 'DemoSettings':
        """A few iterations of every step (CI smoke run)."""
        return cls(iters_s1=30, iters_s2=20, encoder_iters=5, batch_size=4, log_interval=5,
                   train_photos=TRAIN_PHOTOS[:3])


# ---------------------------------------------------------------------------
# console
# ---------------------------------------------------------------------------
class Console:
    """Prints step headers and timings, and keeps the timings for the report."""

    def __init__(self) -> None:
        self.start = time.time()
        self.timings: Dict[str, float] = {}

    def step(self, index: int, total: int, title: str) -> float:
        """Print a step header and return its start time."""
        print(f'\n[{index}/{total}] {title}  (t+{time.time() - self.start:.0f}s)', flush=True)
        return time.time()

    def done(self, key: str, since: float, note: str = '') -> None:
        """Record and print how long a step took."""
        self.timings[key] = round(time.time() - since, 1)
        print(f'      done in {self.timings[key]:.1f}s{"  " + note if note else ""}',
              flush=True)


def info(msg: str) -> None:
    """Print an indented progress line."""
    print(f'      {msg}', flush=True)


def show(path: str) -> str:
    """``path`` relative to the working directory when it lies below it, else absolute."""
    rel = osp.relpath(path)
    return path if rel.startswith('..') else rel


def _quiet_mm_import_warnings() -> Callable[[], ContextManager[None]]:
    """``diffir_mm.utils.warnings.quiet_mm_import_warnings``, loaded without the mm stack.

    Returns:
        Callable: The context-manager factory that silences third-party import noise.
    """
    path = osp.join(REPO_ROOT, 'diffir_mm', 'utils', 'warnings.py')
    spec = importlib.util.spec_from_file_location('_diffir_demo_warnings', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module.quiet_mm_import_warnings


def import_mm_stack(threads: int) -> None:
    """Import torch, MMagic and ``diffir_mm`` once, quietly, with ``threads`` torch threads.

    Args:
        threads: Torch threads of this process (0: leave torch's default).
    """
    with _quiet_mm_import_warnings()():
        import torch
        if threads > 0:
            torch.set_num_threads(threads)
        import mmagic.apis  # noqa: F401
        import mmagic.datasets.transforms  # noqa: F401
        import mmagic.evaluation  # noqa: F401

        import diffir_mm  # noqa: F401  (registers our modules and 'diffir' in the inferencer)


@contextlib.contextmanager
def quiet_mmengine() -> Iterator[None]:
    """Hide mmengine's INFO/WARNING chatter (checkpoint loading, inferencer set-up)."""
    from mmengine.logging import MMLogger

    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings('ignore', category=UserWarning, module='mmengine')
            yield
    finally:
        logger.setLevel(level)


# ---------------------------------------------------------------------------
# output folder
# ---------------------------------------------------------------------------
def prepare_out_dir(out_dir: str, force: bool) -> None:
    """Create or reuse ``out_dir`` without touching anything the demo did not make.

    A folder carrying the demo's marker is reused: the previous run's outputs
    (:data:`OUTPUTS`) are removed. A non-empty folder without the marker is
    refused unless ``force``; then only the demo's own names are replaced.

    Args:
        out_dir: The output folder (absolute).
        force: Allow a non-empty folder that the demo did not create.

    Raises:
        SystemExit: For a refused folder.
    """
    protected = {osp.abspath(p) for p in (os.sep, osp.expanduser('~'), REPO_ROOT, os.getcwd())}
    if out_dir in protected or REPO_ROOT.startswith(out_dir + os.sep):
        sys.exit(f'demo: refusing --out-dir {out_dir}: give a dedicated folder '
                 '(default: demo_out)')
    if osp.exists(out_dir) and not osp.isdir(out_dir):
        sys.exit(f'demo: --out-dir {out_dir} exists and is not a folder')
    ours = osp.isfile(osp.join(out_dir, MARKER))
    if osp.isdir(out_dir) and os.listdir(out_dir) and not ours:
        if not force:
            sys.exit(f'demo: {out_dir} is not empty and was not created by the demo '
                     f'(no {MARKER} file); choose another --out-dir or pass --force')
        print(f'demo: --force: writing into {out_dir} (only {", ".join(OUTPUTS)} are replaced)')
    os.makedirs(out_dir, exist_ok=True)
    for name in OUTPUTS:
        path = osp.join(out_dir, name)
        if osp.isdir(path) and not osp.islink(path):
            shutil.rmtree(path)
        elif osp.lexists(path):
            os.remove(path)
    with open(osp.join(out_dir, MARKER), 'w', encoding='utf-8') as f:
        f.write('Created by tools/demo.py (DiffIR demo); safe to delete with its folder.\n')


# ---------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------
def load_photo(name: str) -> np.ndarray:
    """An offline scikit-image photo as an RGB uint8 array.

    Args:
        name: A :mod:`skimage.data` function name, or ``'motorcycle_left'``.

    Returns:
        np.ndarray: ``(H, W, 3)`` uint8, RGB.
    """
    import skimage.data

    if name == 'motorcycle_left':
        img = skimage.data.stereo_motorcycle()[0]
    else:
        img = getattr(skimage.data, name)()
    if img.ndim == 2:
        img = np.stack([img] * 3, axis=-1)
    return np.ascontiguousarray(img[..., :3]).astype(np.uint8)


def bicubic(img: np.ndarray, scale: float) -> np.ndarray:
    """MATLAB-like bicubic resize (MMagic's ``MATLABLikeResize``), float output.

    Args:
        img: ``(H, W, C)`` image, any numeric dtype, 0-255.
        scale: Resize factor (0.25 down, 4 up).

    Returns:
        np.ndarray: The resized image, float32, not clipped.
    """
    from mmagic.datasets.transforms import MATLABLikeResize

    return MATLABLikeResize(keys=['img'], scale=scale)._resize(img.astype(np.float32))


def to_uint8(img: np.ndarray) -> np.ndarray:
    """Round and clip to uint8."""
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def write_rgb(path: str, rgb: np.ndarray) -> None:
    """Write an RGB uint8 image (PNG) creating its folder."""
    import cv2

    os.makedirs(osp.dirname(path), exist_ok=True)
    if not cv2.imwrite(path, np.ascontiguousarray(rgb[..., ::-1])):
        raise OSError(f'could not write {path}')


def read_rgb(path: str) -> np.ndarray:
    """Read an image file as RGB uint8."""
    import cv2

    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        raise OSError(f'could not read {path}')
    return img[..., ::-1].copy()


def make_dataset(root: str, settings: DemoSettings) -> Dict[str, object]:
    """Write the paired x4 dataset: ``train/{HR,LR}`` sub-images, ``test/{HR,LR}`` photos.

    Training photos are cut into ``sub_image`` squares (stride ``sub_stride``,
    the last row/column flush with the border); held-out photos are kept whole,
    mod-cropped so that the LR side is a multiple of 8 (the DIRformer's input
    multiple, i.e. no padding). LR = MATLAB bicubic /4, rounded to uint8.

    Args:
        root: ``<out-dir>/data``.
        settings: The demo settings.

    Returns:
        dict: ``train_pairs`` count, ``test`` ``{name: (H, W)}`` of the HR photos.
    """
    size, stride = settings.sub_image, settings.sub_stride
    count = 0
    for name in settings.train_photos:
        img = load_photo(name)
        h, w = img.shape[:2]
        tops = sorted(set(list(range(0, h - size + 1, stride)) + [h - size]))
        lefts = sorted(set(list(range(0, w - size + 1, stride)) + [w - size]))
        for top in tops:
            for left in lefts:
                hr = img[top:top + size, left:left + size]
                key = f'{name}_{top:04d}_{left:04d}.png'
                write_rgb(osp.join(root, 'train', 'HR', key), hr)
                write_rgb(osp.join(root, 'train', 'LR', key), to_uint8(bicubic(hr, 1 / SCALE)))
                count += 1
    test = {}
    mult = SCALE * 8
    for name in settings.test_photos:
        img = load_photo(name)
        h, w = (img.shape[0] // mult) * mult, (img.shape[1] // mult) * mult
        top, left = (img.shape[0] - h) // 2, (img.shape[1] - w) // 2
        hr = np.ascontiguousarray(img[top:top + h, left:left + w])
        write_rgb(osp.join(root, 'test', 'HR', f'{name}.png'), hr)
        write_rgb(osp.join(root, 'test', 'LR', f'{name}.png'), to_uint8(bicubic(hr, 1 / SCALE)))
        with open(osp.join(root, 'test', f'{name}.txt'), 'w', encoding='utf-8') as f:
            f.write(f'{name}.png\n')
        test[name] = (h, w)
    return dict(train_pairs=count, test=test)


# ---------------------------------------------------------------------------
# configs
# ---------------------------------------------------------------------------
def _arch(settings: DemoSettings) -> str:
    """The generator overrides as config text."""
    return ', '.join(f'{k}={v!r}' for k, v in settings.arch.items())


def _common_config(data_root: str, settings: DemoSettings, iters: int) -> str:
    """Config text shared by both stages: data, evaluation, hooks, logging."""
    test_root = osp.join(data_root, 'test')
    names = list(settings.test_photos)
    ema_start = int(iters * settings.ema_start)
    return f"""
# The demo's data: paired HR / bicubic-LR PNGs (same names), random GT patches.
train_pipeline = _base_.train_pipeline
for _step in train_pipeline:
    if _step['type'] == 'PairedRandomCrop':
        _step['gt_patch_size'] = {settings.gt_patch}
del _step
train_dataloader = dict(
    batch_size={settings.batch_size}, num_workers=0,
    dataset=dict(data_root={osp.join(data_root, 'train')!r},
                 data_prefix=dict(img='LR', gt='HR'), ann_file='', pipeline=train_pipeline))

# One evaluation set per held-out photo, so that every photo gets its own metrics.
_photos = {names!r}
_eval_sets = [
    dict(type='BasicImageDataset', data_root={test_root!r},
         ann_file={test_root!r} + '/' + _name + '.txt',
         data_prefix=dict(img='LR', gt='HR'), pipeline=_base_.test_pipeline)
    for _name in _photos]
_eval_loaders = [dict(_base_.eval_loader_cfg, num_workers=0, dataset=_ds) for _ds in _eval_sets]
val_dataloader = _eval_loaders
val_evaluator = [
    dict(type='Evaluator', metrics=[
        dict(type='PSNR', crop_border={CROP_BORDER}, convert_to='Y', prefix=_name),
        dict(type='SSIM', crop_border={CROP_BORDER}, convert_to='Y', prefix=_name)])
    for _name in _photos]
test_dataloader = _eval_loaders
test_evaluator = val_evaluator

train_cfg = dict(max_iters={iters}, val_interval={iters})
default_hooks = dict(
    logger=dict(interval={settings.log_interval}),
    checkpoint=dict(interval={iters}, save_best=None, max_keep_ckpts=1, save_optimizer=False))
log_processor = dict(window_size={settings.log_interval})
# A short run: the EMA only averages the last part of the schedule.
custom_hooks = [dict(_base_.ema_hook, momentum={settings.ema_momentum}, start_iter={ema_start})]
visualizer = dict(vis_backends=[dict(type='LocalVisBackend')])
randomness = dict(seed={settings.seed})
"""


def stage1_config(data_root: str, settings: DemoSettings) -> str:
    """Text of the demo's stage-1 config, derived from ``configs/diffir_sisr_x4_s1.py``."""
    iters = settings.iters_s1
    warm = settings.s1_warmup
    return f"""# DiffIR demo, stage 1 (written by tools/demo.py): a small DiffIR, minutes on a CPU.
_base_ = [{osp.join(REPO_ROOT, 'configs', 'diffir_sisr_x4_s1.py')!r}]
experiment_name = 'demo_diffir_sisr_x4_s1'
""" + _common_config(data_root, settings, iters) + f"""
model = dict(generator=dict({_arch(settings)}))
optim_wrapper = dict(optimizer=dict(lr={settings.lr_s1}))
# Linear warm-up over {warm} iterations, then cosine decay to 1% of the peak.
param_scheduler = [
    dict(type='LinearLR', by_epoch=False, start_factor=0.01, begin=0, end={warm}),
    dict(type='CosineAnnealingLR', by_epoch=False, begin={warm}, end={iters},
         T_max={max(iters - warm, 1)}, eta_min={settings.lr_s1 * 0.01})]
"""


def stage2_config(data_root: str, settings: DemoSettings, s1_ckpt: str) -> str:
    """Text of the demo's stage-2 config, derived from ``configs/diffir_sisr_x4_s2.py``."""
    iters, warm = settings.iters_s2, settings.encoder_iters
    lr = settings.lr_s2
    return f"""# DiffIR demo, stage 2 (written by tools/demo.py): CPEN_S2 + IPR diffusion.
_base_ = [{osp.join(REPO_ROOT, 'configs', 'diffir_sisr_x4_s2.py')!r}]
experiment_name = 'demo_diffir_sisr_x4_s2'
""" + _common_config(data_root, settings, iters) + f"""
# A short warm-up of CPEN_S2 + denoiser ({warm} iterations), then everything jointly.
model = dict(
    generator=dict({_arch(settings)}),
    stage1_checkpoint={s1_ckpt!r},
    train_cfg=dict(encoder_iters={warm}))
optim_wrapper = dict(generator=dict(optimizer=dict(lr={lr})),
                     encoder=dict(optimizer=dict(lr={lr})))
param_scheduler = dict(
    _delete_=True,
    encoder=[dict(type='CosineAnnealingLR', by_epoch=False, T_max={iters}, eta_min={lr * 0.01})],
    generator=[dict(type='CosineAnnealingLR', by_epoch=False, begin={warm}, end={iters},
                    T_max={max(iters - warm, 1)}, eta_min={lr * 0.01})])
"""


# ---------------------------------------------------------------------------
# subprocesses
# ---------------------------------------------------------------------------
_TRAIN_RE = re.compile(r'Iter\(train\)\s*\[\s*(\d+)/(\d+)\]')
_VAL_RE = re.compile(r'Iter\((?:val|test)\)\s*\[\s*\d+/\d+\]\s+(\S+/PSNR.*)')
_ETA_RE = re.compile(r'eta:\s*(\S+)')
_LOSS_RE = re.compile(r'\b(loss\w*|kd_kl|phase_warmup):\s*([-+0-9.eE]+)')


def child_env(threads: Optional[int]) -> Dict[str, str]:
    """Environment of the tool subprocesses (unbuffered, optional thread count)."""
    env = dict(os.environ)
    env['PYTHONUNBUFFERED'] = '1'
    env['NO_ALBUMENTATIONS_UPDATE'] = '1'
    if threads:
        env['OMP_NUM_THREADS'] = env['MKL_NUM_THREADS'] = str(threads)
    return env


def summarise(line: str, label: str) -> Optional[str]:
    """A one-line progress summary of an mmengine log line, or None to stay quiet."""
    m = _TRAIN_RE.search(line)
    if m:
        eta = _ETA_RE.search(line)
        losses = [(k, float(v)) for k, v in _LOSS_RE.findall(line)]
        warm = dict(losses).pop('phase_warmup', None)
        parts = [f'{k} {v:.4f}' for k, v in losses if k != 'phase_warmup']
        phase = '' if warm is None else ('  [warm-up]' if warm > 0.5 else '  [joint]')
        eta_text = f'eta {eta.group(1):>8}' if eta else ' ' * 12
        return (f'[{label}] iter {int(m.group(1)):>5}/{m.group(2)}  {eta_text}  '
                + '  '.join(parts) + phase)
    m = _VAL_RE.search(line)
    if m:
        return f'[{label}] {m.group(1).strip()}'
    if 'Traceback (most recent call last)' in line or re.search(r'\b\w+Error\b', line):
        return f'[{label}] {line.rstrip()}'
    return None


def run_tool(args: Sequence[str], log_path: str, label: str, threads: Optional[int]) -> None:
    """Run a ``tools/*.py`` script, log everything, print a progress summary.

    Args:
        args: Script path and its arguments.
        log_path: Where the full output goes.
        label: Prefix of the progress lines.
        threads: ``OMP_NUM_THREADS`` of the child (0 or None: torch's default).

    Raises:
        SystemExit: When the tool fails (with the tail of its log).
    """
    os.makedirs(osp.dirname(log_path), exist_ok=True)
    cmd = [sys.executable] + list(args)
    info('$ python ' + ' '.join(show(a) if osp.isabs(a) else a for a in cmd[1:]))
    tail: List[str] = []
    with open(log_path, 'w', encoding='utf-8') as log:
        proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=child_env(threads),
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                bufsize=1)
        assert proc.stdout is not None
        for line in proc.stdout:
            log.write(line)
            tail = (tail + [line.rstrip()])[-40:]
            summary = summarise(line, label)
            if summary:
                info(summary)
        code = proc.wait()
    if code != 0:
        print('\n'.join(tail), file=sys.stderr)
        sys.exit(f'demo: {label} failed (exit status {code}); full log: {log_path}')


# ---------------------------------------------------------------------------
# evaluation
# ---------------------------------------------------------------------------
def diffir_metrics(metrics_file: str, names: Sequence[str]) -> Dict[str, Dict[str, float]]:
    """Per-photo ``{'PSNR', 'SSIM'}`` from the ``tools/test.py --out`` file."""
    with open(metrics_file, encoding='utf-8') as f:
        raw = json.load(f)
    return {n: {'PSNR': float(raw[f'{n}/PSNR']), 'SSIM': float(raw[f'{n}/SSIM'])}
            for n in names}


def _metric_sample(gt_rgb: np.ndarray, pred_rgb: np.ndarray) -> dict:
    """What MMagic's metrics receive in the test loop: CHW BGR float 0-255 tensors."""
    import torch

    def chw_bgr(img: np.ndarray) -> 'torch.Tensor':
        return torch.from_numpy(np.ascontiguousarray(
            img[..., ::-1].transpose(2, 0, 1))).float()

    return dict(gt_img=chw_bgr(gt_rgb), output=dict(pred_img=chw_bgr(pred_rgb)))


def score(gt_rgb: np.ndarray, pred_rgb: np.ndarray) -> Dict[str, float]:
    """PSNR / SSIM exactly as the demo's test evaluators compute them.

    The same MMagic metric classes and arguments as in the configs
    (``convert_to='Y'``, ``crop_border=4``), fed the same layout as the test
    loop feeds them (CHW, BGR, float 0-255; predictions clipped, not rounded).

    Args:
        gt_rgb: Ground truth, ``(H, W, 3)`` RGB uint8.
        pred_rgb: Prediction, ``(H, W, 3)`` RGB, 0-255 (float or uint8).

    Returns:
        dict: ``{'PSNR': ..., 'SSIM': ...}``.
    """
    from mmagic.evaluation import PSNR, SSIM

    sample = _metric_sample(gt_rgb, np.clip(pred_rgb, 0, 255))
    out = {}
    for metric in (PSNR(crop_border=CROP_BORDER, convert_to='Y', prefix='demo'),
                   SSIM(crop_border=CROP_BORDER, convert_to='Y', prefix='demo')):
        metric.process([], [sample])
        out[metric.metric] = float(metric.compute_metrics(metric.results)[metric.metric])
    return out


def baseline(data_root: str, names: Sequence[str],
             results_dir: str) -> Dict[str, Dict[str, float]]:
    """Bicubic x4 upsampling of the held-out LR photos, scored like DiffIR.

    Saves the (rounded) upsampled images as ``<results>/<name>_bicubic.png``.
    """
    out = {}
    for name in names:
        gt = read_rgb(osp.join(data_root, 'test', 'HR', f'{name}.png'))
        lq = read_rgb(osp.join(data_root, 'test', 'LR', f'{name}.png'))
        up = np.clip(bicubic(lq, SCALE), 0, 255)
        out[name] = score(gt, up)
        write_rgb(osp.join(results_dir, f'{name}_bicubic.png'), to_uint8(up))
    return out


def restore_with_inferencer(config: str, ckpt: str, lq_path: str, out_png: str,
                            log_path: str) -> np.ndarray:
    """Restore ``lq_path`` with ``MMagicInferencer('diffir', ...)``; returns the RGB result.

    Args:
        config: The stage-2 config.
        ckpt: The stage-2 checkpoint.
        lq_path: The LR image.
        out_png: Where the inferencer writes the restored image.
        log_path: Where what the inferencer prints goes.

    Returns:
        np.ndarray: The restored image as written (RGB uint8).
    """
    from mmagic.apis import MMagicInferencer

    import diffir_mm  # noqa: F401  (registers 'diffir' with MMagicInferencer)

    # mmengine prints its checkpoint-loading chatter; keep it in the log, not on the console.
    with open(log_path, 'w', encoding='utf-8') as log, contextlib.redirect_stdout(log), \
            quiet_mmengine():
        inferencer = MMagicInferencer('diffir', model_config=config, model_ckpt=ckpt)
        inferencer.infer(img=lq_path, result_out_dir=out_png)
    if not osp.isfile(out_png):
        raise RuntimeError(f'the inferencer wrote no image to {out_png}')
    return read_rgb(out_png)


# ---------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------
def comparison_figure(path: str, name: str, lq: np.ndarray, bic: np.ndarray,
                      restored: np.ndarray, gt: np.ndarray, psnr_bic: float,
                      psnr_diffir: float) -> None:
    """LQ (nearest x4) / bicubic / DiffIR / GT, full view and a 2x zoomed crop.

    Args:
        path: Output PNG.
        name: Photo name (title).
        lq, bic, restored, gt: RGB uint8 images (``lq`` at LR size).
        psnr_bic, psnr_diffir: PSNR-Y of the bicubic and DiffIR results.
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    h, w = gt.shape[:2]
    nearest = np.repeat(np.repeat(lq, SCALE, axis=0), SCALE, axis=1)[:h, :w]
    panels = [(nearest, 'LQ input (nearest x4)'), (bic, f'Bicubic x4\nPSNR-Y {psnr_bic:.2f} dB'),
              (restored, f'DiffIR (small, demo)\nPSNR-Y {psnr_diffir:.2f} dB'),
              (gt, 'Ground truth')]
    ch, cw = h // 3, w // 3  # zoomed crop around the centre
    top, left = (h - ch) // 2, (w - cw) // 2
    fig, axes = plt.subplots(2, 4, figsize=(16, 4 * h / w * 2 + 1.2), dpi=100)
    for col, (img, title) in enumerate(panels):
        axes[0, col].imshow(img)
        axes[0, col].set_title(title, fontsize=11)
        axes[1, col].imshow(img[top:top + ch, left:left + cw], interpolation='nearest')
        axes[0, col].add_patch(plt.Rectangle((left, top), cw, ch, fill=False, color='yellow',
                                             linewidth=1))
        for ax in axes[:, col]:
            ax.set_xticks([])
            ax.set_yticks([])
    fig.suptitle(f'DiffIR x4 super-resolution demo: held-out photo "{name}" '
                 f'(PSNR on Y, {CROP_BORDER}-pixel border crop)', fontsize=12)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def mean_of(per_image: Dict[str, Dict[str, float]]) -> Dict[str, float]:
    """Mean of each metric over the photos."""
    keys = next(iter(per_image.values())).keys()
    return {k: float(np.mean([v[k] for v in per_image.values()])) for k in keys}


def results_table(bic: Dict[str, Dict[str, float]], ours: Dict[str, Dict[str, float]]) -> str:
    """The printed results table (one row per photo and the mean)."""
    rows = [(n, bic[n], ours[n]) for n in ours] + [('mean', mean_of(bic), mean_of(ours))]
    lines = [f'{"photo":<12}{"bicubic PSNR":>14}{"DiffIR PSNR":>13}{"gain":>8}'
             f'{"bicubic SSIM":>14}{"DiffIR SSIM":>13}',
             '-' * 74]
    for name, b, o in rows:
        lines.append(f'{name:<12}{b["PSNR"]:>14.2f}{o["PSNR"]:>13.2f}'
                     f'{o["PSNR"] - b["PSNR"]:>+8.2f}{b["SSIM"]:>14.4f}{o["SSIM"]:>13.4f}')
    return '\n'.join(lines)


# ---------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------
def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        description='Train and evaluate a small two-stage DiffIR (bicubic x4 SR) on '
        'scikit-image photos, through tools/train.py, tools/test.py and MMagicInferencer.')
    parser.add_argument('--out-dir', default='demo_out',
                        help='output folder (default: demo_out); created and marked as the '
                        "demo's own")
    parser.add_argument('--quick', action='store_true',
                        help='a few iterations of every step (under a minute; CI smoke run)')
    parser.add_argument('--iters-s1', type=int, help='stage-1 iterations')
    parser.add_argument('--iters-s2', type=int, help='stage-2 iterations (warm-up included)')
    parser.add_argument('--threads', type=int, default=1,
                        help='torch threads of every process (default 1: the small model runs '
                        'tiny kernels, and more threads make it slower, dramatically so on a '
                        'busy machine; 0: torch decides)')
    parser.add_argument('--seed', type=int, help='random seed of both stages')
    parser.add_argument('--force', action='store_true',
                        help='write into a non-empty folder the demo did not create')
    args = parser.parse_args(argv)
    if args.threads < 0:
        parser.error('--threads must be 0 (torch decides) or more')
    for opt in ('iters_s1', 'iters_s2'):
        value = getattr(args, opt)
        if value is not None and value < 1:
            parser.error(f'--{opt.replace("_", "-")} must be at least 1')
    return args


def build_settings(args: argparse.Namespace) -> DemoSettings:
    """Default or quick settings with the command-line overrides."""
    settings = DemoSettings.quick() if args.quick else DemoSettings()
    if args.iters_s1 is not None:
        settings.iters_s1 = args.iters_s1
    if args.iters_s2 is not None:
        settings.iters_s2 = args.iters_s2
        settings.encoder_iters = min(settings.encoder_iters, max(args.iters_s2 // 5, 0))
    if args.seed is not None:
        settings.seed = args.seed
    settings.log_interval = max(1, min(settings.log_interval, settings.iters_s1 // 4 or 1))
    return settings


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point; returns the exit status."""
    args = parse_args(argv)
    settings = build_settings(args)
    out_dir = osp.abspath(args.out_dir)
    prepare_out_dir(out_dir, args.force)
    console = Console()
    total = 7
    data_root = osp.join(out_dir, 'data')
    cfg_dir = osp.join(out_dir, 'configs')
    work = osp.join(out_dir, 'work_dirs')
    logs = osp.join(out_dir, 'logs')
    results = osp.join(out_dir, 'results')
    names = list(settings.test_photos)
    train_py, test_py = osp.join(REPO_ROOT, 'tools', 'train.py'), osp.join(REPO_ROOT, 'tools',
                                                                           'test.py')
    print(f'DiffIR demo: bicubic x4 SR on scikit-image photos -> {out_dir}'
          + ('  [--quick]' if args.quick else ''), flush=True)

    t = console.step(1, total, 'data: HR sub-images + MATLAB-bicubic /4 LR')
    import_mm_stack(args.threads)
    data = make_dataset(data_root, settings)
    console.done('data', t, f'{data["train_pairs"]} training pairs from '
                 f'{len(settings.train_photos)} photos; held out: '
                 + ', '.join(f'{n} {h}x{w}' for n, (h, w) in data['test'].items()))

    os.makedirs(cfg_dir, exist_ok=True)
    s1_cfg = osp.join(cfg_dir, 'demo_diffir_sisr_x4_s1.py')
    s2_cfg = osp.join(cfg_dir, 'demo_diffir_sisr_x4_s2.py')
    s1_ckpt = osp.join(work, 's1', f'iter_{settings.iters_s1}.pth')
    s2_ckpt = osp.join(work, 's2', f'iter_{settings.iters_s2}.pth')
    with open(s1_cfg, 'w', encoding='utf-8') as f:
        f.write(stage1_config(data_root, settings))
    with open(s2_cfg, 'w', encoding='utf-8') as f:
        f.write(stage2_config(data_root, settings, s1_ckpt))

    t = console.step(2, total, f'stage 1: CPEN_S1 + DIRformer, {settings.iters_s1} iterations '
                     '(tools/train.py)')
    info(f'small DiffIR: {settings.arch}; batch {settings.batch_size} x '
         f'{settings.gt_patch}px GT patches, Adam lr {settings.lr_s1} '
         f'({settings.s1_warmup} warm-up iterations, cosine decay)')
    run_tool([train_py, s1_cfg, '--work-dir', osp.join(work, 's1')],
             osp.join(logs, 'stage1.log'), 'stage 1', args.threads)
    console.done('stage1', t, '(stage-1 validation uses the GT prior: an upper bound)')

    t = console.step(3, total, f'stage 2: CPEN_S2 + IPR diffusion, {settings.iters_s2} '
                     f'iterations ({settings.encoder_iters} warm-up) (tools/train.py)')
    run_tool([train_py, s2_cfg, '--work-dir', osp.join(work, 's2')],
             osp.join(logs, 'stage2.log'), 'stage 2', args.threads)
    console.done('stage2', t)

    t = console.step(4, total, 'test: DiffIR stage 2 on the held-out photos (tools/test.py)')
    metrics_file = osp.join(results, 'test_metrics.json')
    run_tool([test_py, s2_cfg, s2_ckpt, '--work-dir', osp.join(work, 'test'), '--out',
              metrics_file], osp.join(logs, 'test.log'), 'test', args.threads)
    ours = diffir_metrics(metrics_file, names)
    console.done('test', t)

    t = console.step(5, total, 'baseline: bicubic x4 upsampling, same metrics')
    bic = baseline(data_root, names, results)
    console.done('baseline', t)

    t = console.step(6, total, f'inference: MMagicInferencer("diffir") on "{SHOWCASE}"')
    lq_path = osp.join(data_root, 'test', 'LR', f'{SHOWCASE}.png')
    restored_png = osp.join(results, f'{SHOWCASE}_diffir.png')
    restored = restore_with_inferencer(s2_cfg, s2_ckpt, lq_path, restored_png,
                                       osp.join(logs, 'inference.log'))
    gt = read_rgb(osp.join(data_root, 'test', 'HR', f'{SHOWCASE}.png'))
    inferred = score(gt, restored)
    info(f'wrote {show(restored_png)}; PSNR-Y {inferred["PSNR"]:.2f} dB '
         f'(tools/test.py: {ours[SHOWCASE]["PSNR"]:.2f} dB before rounding to 8 bits)')
    console.done('inference', t)

    t = console.step(7, total, 'report: comparison.png, metrics.json')
    figure = osp.join(out_dir, 'comparison.png')
    comparison_figure(figure, SHOWCASE, read_rgb(lq_path),
                      read_rgb(osp.join(results, f'{SHOWCASE}_bicubic.png')), restored, gt,
                      bic[SHOWCASE]['PSNR'], inferred['PSNR'])
    console.done('report', t)
    console.timings['total'] = round(time.time() - console.start, 1)

    mean_bic, mean_ours = mean_of(bic), mean_of(ours)
    beats = all(ours[n]['PSNR'] > bic[n]['PSNR'] for n in names)
    report = {
        'task': 'bicubic x4 super-resolution (scikit-image photos)',
        'metric': (f'MMagic PSNR / SSIM on the Y channel (BT.601), crop_border={CROP_BORDER}, '
                   'predictions clipped to [0, 255], averaged over photos'),
        'per_image': {n: {'bicubic': bic[n], 'diffir': ours[n]} for n in names},
        'mean': {'bicubic': mean_bic, 'diffir': mean_ours},
        'psnr_gain_db': mean_ours['PSNR'] - mean_bic['PSNR'],
        'diffir_beats_bicubic': beats,
        'inferencer': {'photo': SHOWCASE, 'output': restored_png, **inferred},
        'settings': dict(asdict(settings), quick=args.quick, threads=args.threads,
                         scale=SCALE, train_pairs=data['train_pairs'],
                         test_sizes={n: list(s) for n, s in data['test'].items()}),
        'timings_s': console.timings,
        'artefacts': {'configs': [s1_cfg, s2_cfg], 'stage1_checkpoint': s1_ckpt,
                      'stage2_checkpoint': s2_ckpt, 'test_metrics': metrics_file,
                      'comparison': figure, 'restored': restored_png, 'logs': logs},
    }
    metrics_path = osp.join(out_dir, 'metrics.json')
    with open(metrics_path, 'w', encoding='utf-8') as f:
        json.dump(report, f, indent=2)

    print('\nResults on the held-out photos (PSNR in dB and SSIM, Y channel, '
          f'{CROP_BORDER}-pixel border crop):\n')
    print(results_table(bic, ours))
    verdict = ('DiffIR beats bicubic on every held-out photo.' if beats else
               'DiffIR does NOT beat bicubic on every held-out photo'
               + (' (expected with --quick).' if args.quick else '.'))
    print(f'\n{verdict}\nTotal time {console.timings["total"]:.0f}s '
          f'(stage 1 {console.timings["stage1"]:.0f}s, stage 2 {console.timings["stage2"]:.0f}s)')
    print(f'Figure: {show(figure)}\nMetrics: {show(metrics_path)}\n'
          f'Restored: {show(restored_png)}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
