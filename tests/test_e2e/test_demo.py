"""``tools/demo.py`` (``make demo``): every step on the ``--quick`` schedule, and its out-dir rules.

The quick run trains both stages for a few iterations through ``tools/train.py``, tests through
``tools/test.py``, scores the bicubic baseline, restores a held-out photo with
``MMagicInferencer('diffir', ...)`` and writes the report; each artefact is checked here. The
model is not expected to beat bicubic on this schedule.
"""
import importlib.util
import json
import math
import os
import os.path as osp
import sys

import cv2
import pytest

from helpers import REPO_ROOT, run_python

DEMO = osp.join(REPO_ROOT, 'tools', 'demo.py')
PHOTOS = ('chelsea', 'coffee')


def _load_demo_module():
    spec = importlib.util.spec_from_file_location('_diffir_demo', DEMO)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp('demo') / 'demo_out'
    proc = run_python([DEMO, '--quick', '--out-dir', str(out)], timeout=900)
    return out, proc.stdout


def test_quick_demo_prints_progress_and_table(quick_run):
    _, stdout = quick_run
    for step in range(1, 8):
        assert f'[{step}/7]' in stdout
    assert '[stage 1] iter' in stdout and '[stage 2] iter' in stdout
    assert 'loss_pix' in stdout and 'loss_prior' in stdout and '[warm-up]' in stdout
    lines = stdout.splitlines()
    header = [i for i, line in enumerate(lines)
              if line.startswith('photo') and 'DiffIR PSNR' in line]
    assert header, 'no results table'
    rows = {line.split()[0]: line.split()[1:] for line in lines[header[0] + 2:header[0] + 5]}
    assert set(rows) == set(PHOTOS) | {'mean'}
    for values in rows.values():
        assert len(values) == 5 and all(math.isfinite(float(v)) for v in values)
    assert 'Total time' in stdout


def test_quick_demo_metrics_json(quick_run):
    out, _ = quick_run
    with open(out / 'metrics.json') as f:
        report = json.load(f)
    assert {'task', 'metric', 'per_image', 'mean', 'psnr_gain_db', 'diffir_beats_bicubic',
            'inferencer', 'settings', 'timings_s', 'artefacts'} <= set(report)
    assert set(report['per_image']) == set(PHOTOS)
    for method in ('bicubic', 'diffir'):
        for name in PHOTOS:
            scores = report['per_image'][name][method]
            assert 15 < scores['PSNR'] < 60 and 0 < scores['SSIM'] <= 1
        mean = report['mean'][method]
        assert mean['PSNR'] == pytest.approx(
            sum(report['per_image'][n][method]['PSNR'] for n in PHOTOS) / len(PHOTOS))
    assert isinstance(report['diffir_beats_bicubic'], bool)
    settings = report['settings']
    assert settings['quick'] is True and settings['scale'] == 4
    assert settings['iters_s1'] > 0 and settings['iters_s2'] > settings['encoder_iters'] > 0
    assert settings['test_photos'] == list(PHOTOS)
    assert not set(settings['test_photos']) & set(settings['train_photos'])
    assert {'data', 'stage1', 'stage2', 'test', 'baseline', 'inference', 'report',
            'total'} <= set(report['timings_s'])
    # The inferencer's 8-bit output, scored by the demo, agrees with tools/test.py's
    # evaluator on the float output: same metric definition on both paths.
    inferred = report['inferencer']
    photo = inferred['photo']
    assert inferred['PSNR'] == pytest.approx(report['per_image'][photo]['diffir']['PSNR'],
                                             abs=0.05)
    for key in ('stage1_checkpoint', 'stage2_checkpoint', 'test_metrics', 'comparison',
                'restored'):
        assert osp.isfile(report['artefacts'][key]), key
    assert all(osp.isfile(p) for p in report['artefacts']['configs'])


def test_quick_demo_images_and_configs(quick_run):
    out, _ = quick_run
    figure = cv2.imread(str(out / 'comparison.png'))
    assert figure is not None and figure.shape[0] > 200 and figure.shape[1] > 800
    restored = cv2.imread(str(out / 'results' / 'chelsea_diffir.png'))
    gt = cv2.imread(str(out / 'data' / 'test' / 'HR' / 'chelsea.png'))
    lq = cv2.imread(str(out / 'data' / 'test' / 'LR' / 'chelsea.png'))
    assert restored is not None and restored.shape == gt.shape
    assert lq.shape[0] * 4 == gt.shape[0] and lq.shape[1] * 4 == gt.shape[1]
    assert os.listdir(out / 'data' / 'train' / 'HR') == os.listdir(out / 'data' / 'train' / 'LR')
    s1 = (out / 'configs' / 'demo_diffir_sisr_x4_s1.py').read_text()
    s2 = (out / 'configs' / 'demo_diffir_sisr_x4_s2.py').read_text()
    assert osp.join(REPO_ROOT, 'configs', 'diffir_sisr_x4_s1.py') in s1
    assert osp.join(REPO_ROOT, 'configs', 'diffir_sisr_x4_s2.py') in s2
    assert 'randomness = dict(seed=' in s1 and 'stage1_checkpoint=' in s2
    assert osp.isfile(out / '.diffir_demo')


def test_refuses_foreign_non_empty_out_dir(tmp_path):
    foreign = tmp_path / 'mine'
    foreign.mkdir()
    (foreign / 'notes.txt').write_text('keep me')
    proc = run_python([DEMO, '--quick', '--out-dir', str(foreign)], check=False, timeout=120)
    assert proc.returncode != 0 and 'not created by the demo' in proc.stdout
    assert os.listdir(foreign) == ['notes.txt']


def test_out_dir_reuse_and_force_only_touch_demo_outputs(tmp_path):
    demo = _load_demo_module()
    marked = tmp_path / 'marked'
    (marked / 'data' / 'old').mkdir(parents=True)
    (marked / 'metrics.json').write_text('{}')
    (marked / 'mine.txt').write_text('keep me')
    (marked / demo.MARKER).write_text('')
    demo.prepare_out_dir(str(marked), force=False)
    assert sorted(os.listdir(marked)) == sorted([demo.MARKER, 'mine.txt'])

    foreign = tmp_path / 'foreign'
    foreign.mkdir()
    (foreign / 'mine.txt').write_text('keep me')
    with pytest.raises(SystemExit):
        demo.prepare_out_dir(str(foreign), force=False)
    demo.prepare_out_dir(str(foreign), force=True)
    assert (foreign / 'mine.txt').read_text() == 'keep me'
    assert (foreign / demo.MARKER).is_file()

    with pytest.raises(SystemExit):
        demo.prepare_out_dir(REPO_ROOT, force=True)
