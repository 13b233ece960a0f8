#!/usr/bin/env python
"""Train, test and use a small two-stage DiffIR on a CPU in minutes (``make demo``).

Every step runs the project's own entry points on photos bundled with scikit-image: the photos
are degraded (``--task deblur``: random linear motion blur; ``--task sr``: MATLAB bicubic /4;
``--task inpaint``: LaMa masks, drawn per training sample by the config, fixed per held-out
photo); ``tools/train.py`` trains stage 1, then stage 2, on
``configs/demo/diffir_demo_<task>_s{1,2}.py`` (data paths, and ``--quick``'s iterations, set by
``--cfg-options``); ``tools/test.py --out`` scores the held-out photos; ``MMagicInferencer``
restores them and the config's metrics score DiffIR and the classical baseline (the blurred
input; bicubic x4; OpenCV's Telea inpainting); ``<out-dir>/<task>/comparison.png`` and
``metrics.json`` report it. A non-empty ``--out-dir`` without the demo's ``.diffir_demo`` mark is
refused; a run replaces only ``<out-dir>/<task>``. Tasks and figure: :mod:`diffir_mm.demo`.
"""
from __future__ import annotations

import argparse
import contextlib
import glob
import io
import json
import os
import os.path as osp
import shutil
import subprocess
import sys
import time
from typing import Dict, Iterator, List

import numpy as np

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if REPO_ROOT not in sys.path:  # this checkout's diffir_mm, like tools/train.py and tools/test.py
    sys.path.insert(0, REPO_ROOT)
from diffir_mm.demo.report import figure, scores  # noqa: E402
from diffir_mm.demo.tasks import (SHOWCASE, TASKS, TEST_PHOTOS, TRAIN_PHOTOS, make_data,  # noqa: E402
                                  read, write)
from diffir_mm.utils.atomic import write_bytes_atomic  # noqa: E402

MARKER = '.diffir_demo'
METRICS = ('PSNR', 'SSIM', 'ColourError')  # the demo configs' test metrics, as the tables show them
QUICK_ITERS = (30, 20)  # --quick: stage-1 and stage-2 iterations (the configs' schedules, cut)


def summary(row: Dict[str, float]) -> str:
    """A figure label's scores: PSNR and colour error."""
    return f'PSNR {row["PSNR"]:.2f} dB, colour err. {row["ColourError"]:.1f}'


def table_cell(row: Dict[str, float]) -> str:
    """A printed table's scores: PSNR / SSIM / colour error."""
    return f'{row["PSNR"]:.2f} dB / {row["SSIM"]:.4f} / {row["ColourError"]:.1f}'


def show(path: str) -> str:
    """``path`` relative to the working directory when below it, else absolute."""
    return path if osp.relpath(path).startswith('..') else osp.relpath(path)


def echo_scalars(work_dir: str, seen: int) -> int:
    """Print the losses / learning rates logged after line ``seen`` of mmengine's scalars.json."""
    paths = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')))
    lines = open(paths[-1], encoding='utf-8').read().splitlines() if paths else []
    for rec in map(json.loads, lines[seen:]):
        print(f'  iter {rec["iter"]:>5}  ' + '  '.join(
            f'{k} {v:.4g}' for k, v in rec.items() if k.startswith('loss') or 'lr' in k),
            flush=True)
    return len(lines)


def run_tool(tool: str, args: List[str], work_dir: str, log: str) -> None:
    """Run ``tools/<tool>.py`` with its output in ``log``, echoing what it logs as it trains."""
    cmd = [sys.executable, osp.join(REPO_ROOT, 'tools', f'{tool}.py')] + args
    print('  $ python ' + ' '.join(show(a) if osp.isabs(a) else a for a in cmd[1:]), flush=True)
    os.makedirs(osp.dirname(log), exist_ok=True)
    # One thread per process unless told otherwise: the small model's kernels are tiny, and a
    # second OpenMP thread gains little and slows down badly on a busy machine.
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get('OMP_NUM_THREADS', '1'))
    with open(log, 'w', encoding='utf-8') as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=REPO_ROOT, env=env)
        seen = 0
        while proc.poll() is None:
            time.sleep(1)
            seen = echo_scalars(work_dir, seen)
        echo_scalars(work_dir, seen)
    if proc.returncode:
        sys.exit(f'demo: tools/{tool}.py failed (exit status {proc.returncode}); see {log}')


def prepare_out_dir(out_dir: str, task: str) -> str:
    """Create or reuse the demo's ``out_dir``; returns a fresh ``<out_dir>/<task>``."""
    if osp.isdir(out_dir) and os.listdir(out_dir) and not osp.isfile(osp.join(out_dir, MARKER)):
        sys.exit(f'demo: {out_dir} is not empty and was not created by the demo (no {MARKER}); '
                 'choose another --out-dir')
    os.makedirs(out_dir, exist_ok=True)
    with open(osp.join(out_dir, MARKER), 'w', encoding='utf-8') as f:
        f.write('Created by tools/demo.py; safe to delete with its folder.\n')
    shutil.rmtree(osp.join(out_dir, task), ignore_errors=True)  # this task's previous run
    return osp.join(out_dir, task)


@contextlib.contextmanager
def step(timings: Dict[str, float], key: str, title: str) -> Iterator[None]:
    """Print a numbered step header and record the step's duration in ``timings[key]``."""
    start = time.time()
    print(f'\n[{len(timings) + 1}/5] {title}', flush=True)
    yield
    timings[key] = round(time.time() - start, 1)


def main(argv=None) -> None:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--task', choices=sorted(TASKS), default='sr',
                        help='restoration task (default: sr, whose gain shows most in minutes)')
    parser.add_argument('--quick', action='store_true',
                        help=f'{QUICK_ITERS[0]} + {QUICK_ITERS[1]} iterations: every step in '
                        'about a minute (the model then learns little)')
    parser.add_argument('--out-dir', default='demo_out', help='output folder (default: demo_out)')
    args = parser.parse_args(argv)
    task, start, timings = TASKS[args.task], time.time(), {}
    out = prepare_out_dir(osp.abspath(args.out_dir), args.task)
    data, work, res = f'{out}/data', f'{out}/work_dirs', f'{out}/results'
    configs = [f'{REPO_ROOT}/configs/demo/diffir_demo_{args.task}_s{s}.py' for s in (1, 2)]
    print(f'DiffIR demo: {task.title} on scikit-image photos -> {show(out)}', flush=True)

    from diffir_mm.utils.warnings import quiet_mm_import_warnings
    with quiet_mm_import_warnings():  # registration first: it imports and extends MMagic
        import diffir_mm.registration  # noqa: F401
    from mmagic.apis import MMagicInferencer
    from diffir_mm.evaluation.metrics.colour_shift import colour_shift
    from mmengine import Config
    from mmengine.logging import MMLogger
    with step(timings, 'data', 'data: degrade the photos'):
        pairs = make_data(data, task)
        kind = 'pairs' if task.paired_training else 'images (masks drawn per sample)'
        print(f'  {pairs} training {kind} from {len(TRAIN_PHOTOS)} photos; held out: '
              + ', '.join(TEST_PHOTOS))

    paths = [f'train_dataloader.dataset.data_root={data}/train',
             f'test_dataloader.dataset.data_root={data}/test']
    ckpts: List[str] = []
    for stage, config in enumerate(configs, 1):
        with step(timings, f'stage{stage}', f'stage {stage}: {show(config)}'):
            options = paths + ([f'train_cfg.max_iters={QUICK_ITERS[stage - 1]}'] * args.quick
                               + [f'model.stage1_checkpoint={c}' for c in ckpts])
            run_tool('train', [config, '--work-dir', f'{work}/s{stage}', '--cfg-options']
                     + options, f'{work}/s{stage}', f'{out}/logs/stage{stage}.log')
            with open(f'{work}/s{stage}/last_checkpoint', encoding='utf-8') as f:
                ckpts.append(f.read().strip())
    with step(timings, 'test', 'test: tools/test.py on the held-out photos'):
        run_tool('test', [configs[1], ckpts[1], '--work-dir', f'{work}/test', '--out',
                          f'{out}/test_metrics.json', '--cfg-options', paths[1]],
                 f'{work}/test', f'{out}/logs/test.log')
        with open(f'{out}/test_metrics.json', encoding='utf-8') as f:
            test_metrics = json.load(f)

    with step(timings, 'inference', 'inference: MMagicInferencer and the baseline, scored'):
        MMLogger.get_current_instance().setLevel('ERROR')  # mmengine's checkpoint chatter
        with quiet_mm_import_warnings(), contextlib.redirect_stdout(io.StringIO()):
            inferencer = MMagicInferencer('diffir', model_config=configs[1], model_ckpt=ckpts[1])
        cfg, per_image = Config.fromfile(configs[1]), {}
        for name in TEST_PHOTOS:
            files = dict(input=f'{data}/test/input/{name}.png', baseline=f'{res}/{name}_base.png',
                         diffir=f'{res}/{name}_diffir.png', gt=f'{data}/test/target/{name}.png')
            mask = None if task.paired_training else f'{data}/test/mask/{name}_mask000.png'
            if mask:
                files['mask'] = mask
            write(files['baseline'], task.classical(read(files['input']),
                                                    read(mask)[..., 0] if mask else None))
            # the mask only reaches inpainting inferencers (MMagic dispatches by signature)
            inferencer.infer(img=files['input'], mask=mask, result_out_dir=files['diffir'])
            gt, holes = read(files['gt']), read(mask)[..., 0] if mask else None
            per_image[name] = dict(files=files, **{
                k: dict(scores(cfg, gt, read(files[k]), holes), colour_shift_rgb=[
                    round(float(v), 3) for v in colour_shift(gt, read(files[k]), holes)])
                for k in ('baseline', 'diffir')})
    mean = {k: {m: float(np.mean([per_image[n][k][m] for n in TEST_PHOTOS]))
                for m in METRICS} for k in ('baseline', 'diffir')}

    pick = per_image[SHOWCASE]
    labels = dict(input=task.input_label, gt='Ground truth',
                  baseline=f'{task.baseline}\n{summary(pick["baseline"])}',
                  diffir=f'DiffIR (small, demo)\n{summary(pick["diffir"])}')
    layout = figure(f'{out}/comparison.png', [
        (labels[k], read(pick['files'][k]), pick['files'][k])
        for k in ['input'] * bool(task.input_label) + ['baseline', 'diffir', 'gt']])
    timings['total'] = round(time.time() - start, 1)
    gain = mean['diffir']['PSNR'] - mean['baseline']['PSNR']
    report = dict(task=args.task, title=task.title, baseline=task.baseline, quick=args.quick,
                  metrics=[dict(m) for m in cfg.test_evaluator], test_py=test_metrics,
                  per_image=per_image, mean=mean, psnr_gain_db=gain, configs=configs,
                  checkpoints=ckpts, training_pairs=pairs,
                  figure=dict(path=f'{out}/comparison.png', photo=SHOWCASE, panels=layout),
                  timings_s=timings)
    write_bytes_atomic(f'{out}/metrics.json', json.dumps(report, indent=2).encode('utf-8'))

    region = 'in the holes' if mask else 'of the image'
    print(f'PSNR / SSIM / colour error (mean absolute per-channel shift {region}, 0-255 levels)')
    for name, row in list(per_image.items()) + [('mean', mean)]:
        print(f'{name:>8}: {task.baseline} {table_cell(row["baseline"])} -> DiffIR '
              f'{table_cell(row["diffir"])}')
    print(f'DiffIR {gain:+.2f} dB PSNR on average, {timings["total"]:.0f} s in all. Figure: '
          f'{show(out)}/comparison.png, metrics: {show(out)}/metrics.json')
    if gain < 0:  # a loss is reported as one, not as a result
        print(f'Note: the small DiffIR of this short run is worse than {task.baseline}; see '
              'docs/get_started.md (the demo) for what the schedule can and cannot show.')


if __name__ == '__main__':
    main()
