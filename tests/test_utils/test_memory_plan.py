"""tools/train.py --plan: measured peak memory of a training step, checked against real runs.

On the CPU the planner's figure is the peak resident set of a dry-run process; a real
``tools/train.py`` run of the same config on real photos is measured the same way (its own peak
resident set, ``VmHWM``, printed at exit). They must agree within 15 % at two patch sizes (96,
192), and the largest-batch extrapolation (from batches 1 and 2) must predict a real batch-4 run
within 15 % (at 192 px two more samples add 28-31 % of the batch-4 peak, 746-832 MiB measured).
"""
import os
import os.path as osp
import subprocess

import cv2
import numpy as np
import pytest
from helpers import PYTHON, REPO_ROOT, TOOLS_DIR, run_python, sample_image, subprocess_env

from diffir_mm.utils.config_errors import load_config
from diffir_mm.utils.memory_plan import (Measurement, Variant, largest_batch, measure,
                                         parse_memory, plan_settings)

DEMO = osp.join(REPO_ROOT, 'configs', 'demo', 'diffir_demo_deblur_s1.py')
FP32 = Variant('fp32', False)


def _settings(config, options=None):
    return plan_settings(load_config(config, options, 'none', []))


def test_parse_memory_and_largest_batch():
    assert parse_memory('24G') == 24 * 2 ** 30
    assert parse_memory('512MiB') == 512 * 2 ** 20
    assert parse_memory('1.5g') == int(1.5 * 2 ** 30)
    with pytest.raises(ValueError):
        parse_memory('lots')
    low = Measurement(FP32, 1, 3 * 2 ** 30, 0.1, 'cuda')
    high = Measurement(FP32, 2, 5 * 2 ** 30, 0.2, 'cuda')  # 1 GiB base + 2 GiB per sample
    assert largest_batch(low, high, 24 * 2 ** 30) == 11
    assert largest_batch(low, high, 2 * 2 ** 30) == 0
    assert largest_batch(high, Measurement(FP32, 4, 5 * 2 ** 30, 0.2, 'cuda'), 2 ** 40) is None


def test_settings_of_the_recipes():
    deblur = _settings(osp.join(REPO_ROOT, 'configs', 'diffir_deblur_finetune.py'))
    assert (deblur['batch'], deblur['patch'], deblur['scale']) == (4, 256, 1)
    progressive = _settings(osp.join(REPO_ROOT, 'configs', 'diffir_deblur_s1.py'))
    assert (progressive['batch'], progressive['patch'], progressive['progressive']) == (1, 512,
                                                                                        True)
    realsr = _settings(osp.join(REPO_ROOT, 'configs', 'diffir_sr_finetune.py'))
    assert (realsr['batch'], realsr['patch'], realsr['scale'], realsr['image']) == (6, 256, 4,
                                                                                   400)
    inpaint = _settings(osp.join(REPO_ROOT, 'configs', 'diffir_inpaint_finetune.py'))
    assert inpaint['patch'] == 256


@pytest.fixture(scope='module')
def photos(tmp_path_factory):
    root = tmp_path_factory.mktemp('plan_photos')
    for name in ('astronaut', 'coffee', 'chelsea', 'rocket'):
        gt = sample_image(name, 256)[..., ::-1]
        for folder, img in (('target', gt), ('input', cv2.GaussianBlur(gt, (5, 5), 2))):
            os.makedirs(root / folder, exist_ok=True)
            cv2.imwrite(str(root / folder / f'{name}.png'), img)
    return str(root)


def _options(patch, batch):
    return {'train_dataloader.dataset.pipeline.3.gt_patch_size': patch,
            'train_dataloader.batch_size': batch}


#: Runs tools/train.py (argv after the script) and prints its own peak resident set at exit.
_MEASURED_TRAIN = (
    'import atexit, runpy, sys\n'
    'from diffir_mm.utils.host_memory import peak_resident_bytes\n'
    'atexit.register(lambda: print("PEAK-RSS", peak_resident_bytes(), flush=True))\n'
    'sys.argv = sys.argv[1:]\n'
    'runpy.run_path(sys.argv[0], run_name="__main__")\n')


def _real_peak(photos, work, patch, batch, iters=4):
    """Peak resident set of a real tools/train.py run (same config, real photos)."""
    opts = [f'{k}={v}' for k, v in _options(patch, batch).items()] + [
        f'train_dataloader.dataset.data_root={photos}', f'train_cfg.max_iters={iters}',
        f'train_cfg.val_interval={iters}', f'default_hooks.checkpoint.interval={iters}']
    proc = subprocess.run([PYTHON, '-c', _MEASURED_TRAIN, osp.join(TOOLS_DIR, 'train.py'), DEMO,
                           '--work-dir', str(work), '--cfg-options', *opts], cwd=REPO_ROOT,
                          env=subprocess_env(), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:]
    return int(proc.stdout.rsplit('PEAK-RSS ', 1)[1].split()[0])


@pytest.mark.timeout(1200)
def test_plan_matches_real_steps_on_cpu(photos, tmp_path, monkeypatch):
    monkeypatch.setenv('OMP_NUM_THREADS', '1')
    # The test process is made larger than any run measured here, as a long test session is:
    # a child's ``ru_maxrss`` would report this size (the planner once read it so).
    ballast = np.ones(4 * 2 ** 30 // 8)
    measured = {}
    for patch in (96, 192):
        planned, _ = measure(DEMO, _options(patch, 2), FP32, batch=2, iters=3)
        real = _real_peak(photos, tmp_path / f'real_{patch}', patch, 2)
        measured[patch] = planned
        print(f'patch {patch}, batch 2: planned {planned.peak_bytes / 2 ** 20:.0f} MiB, '
              f'real {real / 2 ** 20:.0f} MiB')
        assert planned.device == 'cpu'
        assert abs(planned.peak_bytes - real) <= 0.15 * real
    # extrapolation: batches 1 and 2 at patch 192 predict a real batch-4 run, where the
    # two more samples add a fifth or more of the peak (28-31 % measured)
    low, _ = measure(DEMO, _options(192, 1), FP32, batch=1, iters=3)
    high = measured[192]
    per_sample = high.peak_bytes - low.peak_bytes
    predicted = high.peak_bytes + 2 * per_sample
    real4 = _real_peak(photos, tmp_path / 'real_b4', 192, 4)
    print(f'patch 192: batch 1 {low.peak_bytes / 2 ** 20:.0f} MiB, batch 2 '
          f'{high.peak_bytes / 2 ** 20:.0f} MiB -> batch 4 predicted {predicted / 2 ** 20:.0f} '
          f'MiB, real {real4 / 2 ** 20:.0f} MiB')
    assert 2 * per_sample > 0.2 * real4
    assert abs(predicted - real4) <= 0.15 * real4
    assert ballast.nbytes > real4  # larger than every run measured, as it must be


@pytest.mark.timeout(1200)
def test_plan_cli_table(tmp_path):
    proc = run_python([osp.join(TOOLS_DIR, 'train.py'), DEMO, '--plan', '--memory', '16G',
                       '--plan-iters', '2', '--cfg-options',
                       'train_dataloader.dataset.pipeline.3.gt_patch_size=96',
                       'train_dataloader.batch_size=2'], timeout=1200)
    out = proc.stdout
    assert 'batch 2 per device, patch 96' in out
    rows = [ln.split() for ln in out.splitlines() if ln.strip().startswith(('fp32', 'bf16'))]
    assert [r[:2] for r in rows] == [['fp32', 'off'], ['fp32', 'on']]  # CPU: no bf16 (AMP)
    assert 'bf16 not measured' in out
    assert all(int(r[-1]) > 2 for r in rows), out  # a small model: many images fit in 16G
