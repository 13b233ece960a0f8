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
from helpers import (REPO_ROOT, TOOLS_DIR, free_port, make_paired_images, run_command,
                     run_python, subprocess_env)

TRAIN = osp.join(TOOLS_DIR, 'train.py')
TINY_DEBLUR = 'dim=8, num_blocks=[1, 1, 1, 1], num_refinement_blocks=1, n_encoder_res=1'


@pytest.fixture(scope='module')
def gopro(tmp_path_factory):
    """Blurred/sharp photo pairs: 3 for training (64x64), 1 for validation (48x48)."""
    root = tmp_path_factory.mktemp('gopro')
    make_paired_images(str(root / 'train'), num=3, size=64, mode='blur')
    make_paired_images(str(root / 'test'), num=1, size=48, mode='blur', names=('rocket', ))
    return root


def _config(root, base, extra_model=''):
    return f"""
_base_ = ['{REPO_ROOT}/configs/{base}']
model = dict(generator=dict({TINY_DEBLUR}), {extra_model}
             train_cfg=dict(progressive=dict(iters=[3, 3], mini_batch_sizes=[2, 1],
                                             gt_sizes=[32, 16])))
train_pipeline = _base_.train_pipeline
for _step in train_pipeline:
    if _step['type'] == 'PairedRandomCrop':
        _step['gt_patch_size'] = 48
val_pipeline = _base_.val_pipeline
for _step in val_pipeline:
    if _step['type'] == 'Crop':
        _step['crop_size'] = (32, 32)
del _step
train_dataloader = dict(batch_size=2, num_workers=0, dataset=dict(
    data_root='{root}', data_prefix=dict(img='train/lq', gt='train/gt'), pipeline=train_pipeline))
val_dataloader = dict(num_workers=0, dataset=dict(
    data_root='{root}', data_prefix=dict(img='test/lq', gt='test/gt'), pipeline=val_pipeline))
test_dataloader = None
test_evaluator = None
test_cfg = None
train_cfg = dict(max_iters=6, val_interval=2)
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=2, max_keep_ckpts=10))
visualizer = dict(vis_backends=[dict(type='LocalVisBackend')])
randomness = dict(deterministic=True)
"""


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
    assert full['state_dict'].keys() == resumed['state_dict'].keys()
    worst = {k: (v.float() - resumed['state_dict'][k].float()).abs().max().item()
             for k, v in full['state_dict'].items()}
    differ = {k: d for k, d in worst.items() if d > 0}
    assert not differ, f'{len(differ)} tensors differ, max {max(differ.values()):.3g}'
    assert any(k.startswith('generator_ema.') for k in full['state_dict'])  # EMA is on

    def flat(opt):
        return [(name, idx, key, value) for name, sub in sorted(opt.items())
                for idx, state in sorted(sub['state'].items())
                for key, value in sorted(state.items())]

    opt_full, opt_resumed = full['optimizer'], resumed['optimizer']
    if 'state' in opt_full:  # a single optimizer
        opt_full, opt_resumed = {'': opt_full}, {'': opt_resumed}
    for a, b in zip(flat(opt_full), flat(opt_resumed), strict=True):
        assert a[:3] == b[:3] and torch.equal(torch.as_tensor(a[3]), torch.as_tensor(b[3]))


@pytest.fixture(scope='module')
def stage1(gopro):
    return _train_and_resume(gopro, 's1', _config(gopro, 'diffir_deblur_s1.py'))


def test_deblur_s1_resume_is_exact(stage1):
    full, resumed, _ = stage1
    _assert_identical(full, resumed)
    saved = full['rng_state']
    assert saved['world_size'] == 1 and len(saved['states']) == 1
    assert 'progressive_crop' in saved['states'][0]['model']


def test_deblur_s2_resume_is_exact(gopro, stage1):
    _, _, s1_work = stage1
    text = _config(gopro, 'diffir_deblur_s2.py',
                   extra_model=f"stage1_checkpoint='{s1_work / 'iter_6.pth'}',")
    text = text.replace('gt_sizes=[32, 16])))',
                        'gt_sizes=[32, 16]), encoder_iters=4))')
    full, resumed, _ = _train_and_resume(gopro, 's2', text)
    _assert_identical(full, resumed)
    assert not any(k.startswith('teacher.') for k in full['state_dict'])  # not saved


def test_deblur_s1_two_processes_resume_exactly_with_per_rank_crops(gopro):
    full, resumed, _ = _train_and_resume(gopro, 's1_dist', _config(gopro, 'diffir_deblur_s1.py'),
                                         processes=2)
    _assert_identical(full, resumed)
    states = full['rng_state']['states']
    assert full['rng_state']['world_size'] == 2 and len(states) == 2
    crop0, crop1 = (s['model']['progressive_crop'] for s in states)
    assert crop0 != crop1  # the ranks crop differently
    assert not torch.equal(states[0]['state']['torch'], states[1]['state']['torch'])
    # and the resumed run continued each rank's own streams
    for a, b in zip(states, resumed['rng_state']['states']):
        assert a['model'] == b['model'] and torch.equal(a['state']['torch'], b['state']['torch'])
