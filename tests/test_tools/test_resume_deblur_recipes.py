"""``--resume`` of the real deblurring recipes is exact (tools/train.py, tiny network).

``configs/diffir_deblur_s1.py`` and ``configs/diffir_deblur_s2.py`` are shrunk to a tiny
DIRformer on 64x64 photo pairs; everything else (progressive patches drawn by the model, EMA,
the stage-2 encoder warm-up, validation isolation, the runtime base's random-state hook) is the
recipe's. Each run takes 6 iterations with a progressive phase boundary at iteration 3 and (S2)
the warm-up boundary at iteration 4; a run resumed from the iteration-2 checkpoint crosses both
and must reach bit-identical weights and optimizer states. The same holds for two processes
(``tools/dist_train.sh``, gloo), whose ranks crop differently and get their own states back.
"""
import os.path as osp
import shutil

import pytest
import torch
from helpers import (TOOLS_DIR, assert_same_training_state, free_port, make_paired_images,
                     run_command, run_python, subprocess_env, tiny_deblur_config_text)

TRAIN = osp.join(TOOLS_DIR, 'train.py')


@pytest.fixture(scope='module')
def gopro(tmp_path_factory):
    """Blurred/sharp photo pairs: 3 for training (64x64), 1 for validation (48x48)."""
    root = tmp_path_factory.mktemp('gopro')
    make_paired_images(str(root / 'train'), num=3, size=64, mode='blur')
    make_paired_images(str(root / 'test'), num=1, size=48, mode='blur', names=('rocket', ))
    return root


def _load(path):
    from diffir_mm.checkpoint import read_checkpoint
    return read_checkpoint(path)


def _run_train(cfg, work_dir, processes, *args):
    if processes == 1:
        return run_python([TRAIN, str(cfg), '--work-dir', str(work_dir), *args], timeout=900)
    env = subprocess_env({'PORT': str(free_port())})
    return run_command(['bash', osp.join(TOOLS_DIR, 'dist_train.sh'), str(cfg), str(processes),
                        '--work-dir', str(work_dir), *args], env=env, timeout=900)


def _train_and_resume(root, name, text, processes=1):
    """Uninterrupted 6 iterations, and 4 more from a copy of the iteration-2 checkpoint."""
    cfg = root / f'{name}.py'
    cfg.write_text(text)
    full, resumed = root / f'{name}_full', root / f'{name}_resumed'
    _run_train(cfg, full, processes)
    resumed.mkdir()
    shutil.copy(full / 'iter_2.pth', resumed)
    (resumed / 'last_checkpoint').write_text(str(resumed / 'iter_2.pth'))
    log = _run_train(cfg, resumed, processes, '--resume').stdout
    assert 'random states restored from the checkpoint of iter 2' in log
    return _load(full / 'iter_6.pth'), _load(resumed / 'iter_6.pth'), full


def _assert_identical(full, resumed):
    assert_same_training_state(full, resumed)
    assert any(k.startswith('generator_ema.') for k in full['state_dict'])  # EMA is on


@pytest.fixture(scope='module')
def stage1(gopro):
    return _train_and_resume(gopro, 's1', tiny_deblur_config_text(gopro, 'diffir_deblur_s1.py'))


def test_deblur_s1_resume_is_exact(stage1):
    full, resumed, _ = stage1
    _assert_identical(full, resumed)
    saved = full['rng_state']
    assert saved['world_size'] == 1 and len(saved['states']) == 1
    assert 'progressive_crop' in saved['states'][0]['model']


def test_deblur_s2_resume_is_exact(gopro, stage1):
    _, _, s1_work = stage1
    text = tiny_deblur_config_text(gopro, 'diffir_deblur_s2.py',
                   extra_model=f"stage1_checkpoint='{s1_work / 'iter_6.pth'}',")
    text = text.replace('gt_sizes=[32, 16])))',
                        'gt_sizes=[32, 16]), encoder_iters=4))')
    full, resumed, _ = _train_and_resume(gopro, 's2', text)
    _assert_identical(full, resumed)
    assert not any(k.startswith('teacher.') for k in full['state_dict'])  # not saved


def test_deblur_s1_two_processes_resume_exactly_with_per_rank_crops(gopro):
    text = tiny_deblur_config_text(gopro, 'diffir_deblur_s1.py')
    full, resumed, _ = _train_and_resume(gopro, 's1_dist', text, processes=2)
    _assert_identical(full, resumed)
    states = full['rng_state']['states']
    assert full['rng_state']['world_size'] == 2 and len(states) == 2
    crop0, crop1 = (s['model']['progressive_crop'] for s in states)
    assert crop0 != crop1  # the ranks crop differently
    assert not torch.equal(states[0]['state']['torch'], states[1]['state']['torch'])
    # and the resumed run continued each rank's own streams
    for a, b in zip(states, resumed['rng_state']['states']):
        assert a['model'] == b['model'] and torch.equal(a['state']['torch'], b['state']['torch'])
