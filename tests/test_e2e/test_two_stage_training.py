"""Tiny versions of the real recipes, end to end through tools/train.py and tools/test.py.

Stage 1 (``configs/diffir_sr_s1.py``) trains on scikit-image photos degraded on the fly by the
official second-order pipeline, stage 2 (``configs/diffir_sr_s2.py``) starts from its checkpoint
(warm-up and joint phases), ``tools/test.py`` evaluates the result and saves images. The same
tiny stage-2 recipe then runs through ``tools/dist_train.sh`` with two CPU processes and must
reach the weights of one process with the same global batch.
"""
import glob
import json
import os
import os.path as osp

import cv2
import pytest
import torch

from helpers import (NO_EVAL_CONFIG_LINES, REPO_ROOT, free_port, run_command, run_python,
                     sample_image, subprocess_env)

TINY_ARCH = ('dim=8, num_blocks=[1, 1, 1, 1], num_refinement_blocks=1, n_encoder_res=1')
PHOTOS = ('astronaut', 'coffee', 'chelsea', 'rocket')


def _write(path, rgb):
    os.makedirs(osp.dirname(path), exist_ok=True)
    cv2.imwrite(path, rgb[..., ::-1])


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp('sr_data')
    for name in PHOTOS[:3]:
        _write(str(root / 'train' / 'GT' / f'{name}.png'), sample_image(name, 128))
    gt = sample_image(PHOTOS[3], 64)
    _write(str(root / 'val' / 'HR' / 'rocket.png'), gt)
    _write(str(root / 'val' / 'LR' / 'rocket.png'),
           cv2.resize(gt, (16, 16), interpolation=cv2.INTER_CUBIC))
    return root


def _eval_overrides(root):
    return f"""
_eval_ds = dict(type='BasicImageDataset', data_root='{root}/val',
                data_prefix=dict(img='LR', gt='HR'), pipeline=_base_.val_pipeline)
_eval_metrics = [dict(type='PSNR', crop_border=4, convert_to='Y', prefix='Val'),
                 dict(type='SSIM', crop_border=4, convert_to='Y', prefix='Val')]
val_dataloader = dict(num_workers=0, dataset=dict(_eval_ds, _delete_=True))
val_evaluator = _eval_metrics
test_dataloader = [dict(_base_.eval_loader_cfg, num_workers=0, dataset=_eval_ds)]
test_evaluator = [dict(type='Evaluator', metrics=_eval_metrics)]
custom_hooks = [_base_.ema_hook,
                dict(type='BasicVisualizationHook', interval=1, on_train=False, on_val=False)]
visualizer = dict(vis_backends=[dict(type='LocalVisBackend')])
default_hooks = dict(logger=dict(interval=1),
                     checkpoint=dict(interval={{iters}}, save_best='Val/PSNR', rule='greater'))
randomness = dict(seed=0)
"""


def _stage1_config(root, iters):
    return f"""
_base_ = ['{REPO_ROOT}/configs/diffir_sr_s1.py']
model = dict(generator=dict({TINY_ARCH}))
train_pipeline = _base_.train_pipeline_cpu  # per-image degradation (the batched default:
for _step in train_pipeline:                # tests/test_datasets/test_batched_degradation.py)
    if _step['type'] == 'PadToMinSize':
        _step['min_size'] = 96
    if _step['type'] == 'Crop':
        _step['crop_size'] = (96, 96)
    if _step['type'] == 'PairedRandomCrop':
        _step['gt_patch_size'] = 64
del _step
train_dataloader = dict(batch_size=2, num_workers=0, dataset=dict(
    data_root='{root}/train', data_prefix=dict(gt='GT'), ann_file='', pipeline=train_pipeline))
train_cfg = dict(max_iters={iters}, val_interval={iters})
optim_wrapper = dict(optimizer=dict(lr=1e-3))
""" + _eval_overrides(root).replace('{iters}', str(iters))


def _stage2_config(root, s1_ckpt, iters, encoder_iters):
    return _stage1_config(root, iters).replace('diffir_sr_s1.py', 'diffir_sr_s2.py').replace(
        "optim_wrapper = dict(optimizer=dict(lr=1e-3))",
        f"""model = dict(generator=dict({TINY_ARCH}), stage1_checkpoint='{s1_ckpt}',
             train_cfg=dict(encoder_iters={encoder_iters}))
optim_wrapper = dict(generator=dict(optimizer=dict(lr=1e-3)),
                     encoder=dict(optimizer=dict(lr=1e-3)))""")


def _scalars(work_dir):
    files = glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))
    assert files, f'no scalars.json under {work_dir}'
    with open(sorted(files)[-1]) as f:
        return [json.loads(line) for line in f if line.strip()]


def _train(cfg_text, path, work_dir):
    with open(path, 'w') as f:
        f.write(cfg_text)
    run_python([osp.join(REPO_ROOT, 'tools', 'train.py'), str(path), '--work-dir', str(work_dir)],
               timeout=900)
    return _scalars(str(work_dir))


@pytest.fixture(scope='module')
def stage1(data, tmp_path_factory):
    work = tmp_path_factory.mktemp('s1')
    logs = _train(_stage1_config(data, 30), work / 's1.py', work / 'run')
    return work / 'run', logs


def test_stage1_trains_and_validates(stage1):
    work, logs = stage1
    losses = [r['loss_pix'] for r in logs if 'loss_pix' in r]
    assert len(losses) == 30
    first, last = sum(losses[:8]) / 8, sum(losses[-8:]) / 8
    assert last < first, f'stage-1 loss did not decrease: {first:.4f} -> {last:.4f}'
    assert any('Val/PSNR' in r for r in logs)
    assert osp.isfile(work / 'iter_30.pth')


@pytest.fixture(scope='module')
def stage2(data, stage1, tmp_path_factory):
    s1_work, _ = stage1
    work = tmp_path_factory.mktemp('s2')
    logs = _train(_stage2_config(data, s1_work / 'iter_30.pth', 20, 6), work / 's2.py',
                  work / 'run')
    return work, logs


def test_stage2_warmup_then_joint_and_test(stage2, data):
    work, logs = stage2
    train = [r for r in logs if 'loss_prior' in r]
    assert len(train) == 20
    warm = [r for r in train if r['phase_warmup'] == 1.0]
    joint = [r for r in train if r['phase_warmup'] == 0.0]
    assert len(warm) == 6 and len(joint) == 14
    assert all('loss_pix' not in r for r in warm) and all('loss_pix' in r for r in joint)
    priors = [r['loss_prior'] for r in train]
    assert sum(priors[-5:]) / 5 < sum(priors[:5]) / 5, 'IPR loss did not decrease'
    assert all('kd_kl' in r for r in train)

    out = work / 'metrics.json'
    run_python([osp.join(REPO_ROOT, 'tools', 'test.py'), str(work / 's2.py'),
                str(work / 'run' / 'iter_20.pth'), '--work-dir', str(work / 'test'),
                '--out', str(out)], timeout=600)
    with open(out) as f:
        metrics = json.load(f)
    assert metrics['Val/PSNR'] > 10 and 0 < metrics['Val/SSIM'] <= 1
    images = glob.glob(str(work / 'test' / '**' / '*.png'), recursive=True)
    assert images, 'tools/test.py saved no result images'


# --------------------------------------------------------------------- distributed
def _dist_config(root, s1_ckpt, batch, iters):
    return f"""
_base_ = ['{REPO_ROOT}/configs/diffir_sisr_x4_s2.py']
model = dict(generator=dict({TINY_ARCH}), stage1_checkpoint='{s1_ckpt}',
             train_cfg=dict(encoder_iters=2))
train_pipeline = [dict(type='LoadImageFromFile', key='img', channel_order='rgb'),
                  dict(type='LoadImageFromFile', key='gt', channel_order='rgb'),
                  dict(type='PackInputs')]
train_dataloader = dict(batch_size={batch}, num_workers=0,
                        sampler=dict(type='InfiniteSampler', shuffle=False),
                        dataset=dict(data_root='{root}', data_prefix=dict(img='LR', gt='HR'),
                                     ann_file='', pipeline=train_pipeline))
train_cfg = dict(max_iters={iters}, val_interval=1000)
{NO_EVAL_CONFIG_LINES}custom_hooks = [_base_.ema_hook]
default_hooks = dict(logger=dict(interval=1),
                     checkpoint=dict(interval={iters}, save_best=None))
visualizer = dict(vis_backends=[dict(type='LocalVisBackend')])
randomness = dict(seed=0, diff_rank_seed=False)
"""


def _tiny_s1_checkpoint(path):
    from diffir_mm.archs import DiffIRS1Net
    torch.manual_seed(0)
    net = DiffIRS1Net(task='sr', scale=4, dim=8, num_blocks=[1, 1, 1, 1],
                      num_refinement_blocks=1, ffn_expansion_factor=2.2,
                      LayerNorm_type='BiasFree', n_encoder_res=1)
    torch.save({'state_dict': {f'generator.{k}': v for k, v in net.state_dict().items()}}, path)


def _weights(path):
    from diffir_mm.checkpoint import read_checkpoint
    sd = read_checkpoint(path)['state_dict']
    return {k: v for k, v in sd.items() if k.startswith(('generator.', 'generator_ema.'))}


def test_dist_train_two_processes_match_one(tmp_path):
    root = tmp_path / 'pairs'
    for name in PHOTOS:
        gt = sample_image(name, 32)
        _write(str(root / 'HR' / f'{name}.png'), gt)
        _write(str(root / 'LR' / f'{name}.png'), cv2.resize(gt, (8, 8),
                                                            interpolation=cv2.INTER_AREA))
    s1 = tmp_path / 's1.pth'
    _tiny_s1_checkpoint(s1)
    iters = 4
    single, dist = tmp_path / 'single.py', tmp_path / 'dist.py'
    single.write_text(_dist_config(root, s1, batch=2, iters=iters))
    dist.write_text(_dist_config(root, s1, batch=1, iters=iters))
    run_python([osp.join(REPO_ROOT, 'tools', 'train.py'), str(single), '--work-dir',
                str(tmp_path / 'w1')], timeout=600)
    env = subprocess_env({'PORT': str(free_port())})
    run_command(['bash', osp.join(REPO_ROOT, 'tools', 'dist_train.sh'), str(dist), '2',
                 '--work-dir', str(tmp_path / 'w2')], env=env, timeout=900)
    one = _weights(tmp_path / 'w1' / f'iter_{iters}.pth')
    two = _weights(tmp_path / 'w2' / f'iter_{iters}.pth')
    assert one.keys() == two.keys() and one
    # Same global batch and the same per-sample noise; only the float summation order of the
    # gradient all-reduce differs, so weights agree to float32 rounding.
    worst = max((one[k] - two[k]).abs().max().item() for k in one)
    assert worst < 1e-5, f'1-process vs 2-process weights differ by {worst}'
    moved = max((one[k] - v).abs().max().item() for k, v in _weights_init(s1).items()
                if k in one)
    assert moved > 1e-4, 'training did not change the weights'


def _weights_init(s1_path):
    sd = torch.load(s1_path, map_location='cpu', weights_only=True)['state_dict']
    return {k: v for k, v in sd.items() if k.startswith('generator.dirformer.')}
