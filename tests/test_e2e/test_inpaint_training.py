"""Tiny versions of the real inpainting recipes, end to end through tools/train.py and test.py.

Stage 1 (``configs/diffir_inpaint_celeba_s1.py``) trains on scikit-image photos with LaMa's
generated training masks and validates (FID / LPIPS / SSIM, best checkpoint by the validation
SSIM); stage 2 (``configs/diffir_inpaint_celeba_s2.py``) starts from its checkpoint (joint from
step 0); ``tools/test.py`` evaluates the thin and thick protocols, one image not a multiple of 8.
The Places stage-1 recipe (``configs/diffir_inpaint_places_s1.py``: LaMa's augmentations)
resumes bit-exactly. Only the generator width, the iterations, the data roots and the metric /
ResNet-PL weights (random, written here) are overridden.
"""
import glob
import json
import os
import os.path as osp
import shutil

import cv2
import pytest
import torch

from helpers import NO_EVAL_CONFIG_LINES, REPO_ROOT, run_python, sample_image

TINY_ARCH = 'dim=8, num_blocks=[1, 1, 1, 1], num_refinement_blocks=0, n_encoder_res=1'
TRAIN_PHOTOS = ('astronaut', 'coffee', 'chelsea', 'immunohistochemistry')
GENERATOR_LOSSES = ('loss_l1_masked', 'loss_adv', 'loss_fm', 'loss_resnet_pl')
DISCRIMINATOR_LOSSES = ('loss_d_real', 'loss_d_fake', 'loss_r1')
S1_ITERS, S2_ITERS = 4, 2


def _write(path, rgb):
    os.makedirs(osp.dirname(path), exist_ok=True)
    cv2.imwrite(path, rgb[..., ::-1])


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    """Train photos (64x64; Places: 96x96, one in a sub-folder), eval photos (one 60x64),
    random ResNet-PL and FID Inception weights."""
    root = tmp_path_factory.mktemp('inpaint_data')
    for name in TRAIN_PHOTOS:
        _write(str(root / 'celeba' / 'train' / f'{name}.png'), sample_image(name, 64))
        sub = 'sub' if name == 'coffee' else ''
        _write(str(root / 'places' / 'train' / sub / f'{name}.png'), sample_image(name, 96))
    _write(str(root / 'celeba' / 'eval' / 'rocket.png'), sample_image('rocket', 64))
    _write(str(root / 'celeba' / 'eval' / 'chelsea.png'), sample_image('chelsea', 64))
    _write(str(root / 'celeba' / 'eval' / 'colorwheel.png'),
           sample_image('colorwheel', 64)[:60])  # 60x64: the network pads to 8, crops back

    from mmagic.evaluation.functional import InceptionV3
    from diffir_mm.models.losses.resnet_pl import ADE20kResNet50Dilated
    torch.manual_seed(0)
    torch.save(ADE20kResNet50Dilated().state_dict(), root / 'resnet_pl.pth')
    torch.save(InceptionV3([3], load_fid_inception=False).state_dict(), root / 'inception.pth')
    return root


def _metrics(root, prefix):
    return (f"[dict(type='PairedFID', inception_path='{root}/inception.pth', prefix='{prefix}'),"
            f" dict(type='LPIPS', net='vgg', backbone_path=None, allow_random_weights=True,"
            f" prefix='{prefix}'), dict(type='SSIM', crop_border=0, prefix='{prefix}')]")


def _celeba_config(root, base, iters, extra_model=''):
    data = f'{root}/celeba'
    return f"""
_base_ = ['{REPO_ROOT}/configs/{base}.py']
model = dict(generator=dict({TINY_ARCH}),
             resnet_pl_loss=dict(weights_path='{root}/resnet_pl.pth'){extra_model})
train_dataloader = dict(batch_size=2, num_workers=0, dataset=dict(
    data_root='{data}', data_prefix=dict(gt='train')))
train_cfg = dict(max_iters={iters}, val_interval={iters})
val_dataloader = dict(num_workers=0, dataset=dict(data_root='{data}', data_prefix=dict(gt='eval')))
val_evaluator = {_metrics(root, 'CelebAHQ-val')}
test_dataloader = _base_.test_dataloader
for _loader in test_dataloader:
    _loader['num_workers'] = 0
    _loader['dataset'].update(data_root='{data}', data_prefix=dict(gt='eval'))
del _loader
test_evaluator = [dict(type='Evaluator', metrics={_metrics(root, 'CelebAHQ-thin256')}),
                  dict(type='Evaluator', metrics={_metrics(root, 'CelebAHQ-thick256')})]
visualizer = dict(vis_backends=[dict(type='LocalVisBackend')])
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval={iters // 2}))
randomness = dict(seed=0)
"""


def _scalars(work_dir):
    files = glob.glob(osp.join(str(work_dir), '*', 'vis_data', 'scalars.json'))
    assert files, f'no scalars.json under {work_dir}'
    with open(sorted(files)[-1]) as f:
        return [json.loads(line) for line in f if line.strip()]


def _train(cfg_text, path, work_dir, *args):
    path.write_text(cfg_text)
    proc = run_python([osp.join(REPO_ROOT, 'tools', 'train.py'), str(path), '--work-dir',
                       str(work_dir), *args], timeout=900)
    return proc.stdout


def _state(path):
    from diffir_mm.checkpoint import read_checkpoint
    return read_checkpoint(path)


def _moved(a, b, prefix):
    keys = [k for k in a if k.startswith(prefix) and a[k].is_floating_point()]
    assert keys, f'no {prefix} weights'
    return max((a[k] - b[k]).abs().max().item() for k in keys)


@pytest.fixture(scope='module')
def stage1(data, tmp_path_factory):
    work = tmp_path_factory.mktemp('inp_s1')
    _train(_celeba_config(data, 'diffir_inpaint_celeba_s1', S1_ITERS), work / 's1.py',
           work / 'run')
    return work / 'run'


def test_stage1_logs_every_loss_and_updates_g_and_d(stage1):
    logs = _scalars(stage1)
    train = [r for r in logs if 'loss_l1_masked' in r]
    assert len(train) == S1_ITERS
    for key in GENERATOR_LOSSES + DISCRIMINATOR_LOSSES:
        assert all(key in r for r in train), f'{key} not logged every iteration'
    val = [r for r in logs if 'CelebAHQ-val/SSIM' in r]
    assert val and {'CelebAHQ-val/FID', 'CelebAHQ-val/LPIPS'} <= set(val[-1])
    assert glob.glob(str(stage1 / 'best_CelebAHQ-val_SSIM_iter_*.pth'))
    half = _state(stage1 / f'iter_{S1_ITERS // 2}.pth')['state_dict']
    last = _state(stage1 / f'iter_{S1_ITERS}.pth')['state_dict']
    assert _moved(half, last, 'generator.') > 0, 'the generator did not change'
    assert _moved(half, last, 'discriminator.') > 0, 'the discriminator did not change'


@pytest.fixture(scope='module')
def stage2(data, stage1, tmp_path_factory):
    work = tmp_path_factory.mktemp('inp_s2')
    ckpt = stage1 / f'iter_{S1_ITERS}.pth'
    cfg = _celeba_config(data, 'diffir_inpaint_celeba_s2', S2_ITERS,
                         extra_model=f",\n             stage1_checkpoint='{ckpt}'")
    _train(cfg, work / 's2.py', work / 'run')
    return work


def test_stage2_joint_from_step0_then_test_tool(stage2, stage1, data):
    logs = _scalars(stage2 / 'run')
    train = [r for r in logs if 'loss_l1_masked' in r]
    assert len(train) == S2_ITERS
    for key in GENERATOR_LOSSES + DISCRIMINATOR_LOSSES + ('loss_diff', 'kd_kl'):
        assert all(key in r for r in train), f'{key} not logged every iteration'
    s1 = _state(stage1 / f'iter_{S1_ITERS}.pth')['state_dict']
    s2 = _state(stage2 / 'run' / f'iter_{S2_ITERS}.pth')['state_dict']
    assert not any(k.startswith('teacher') for k in s2), 'the frozen teacher is not saved'
    shared = [k for k in s2 if k.startswith('generator.dirformer.') and k in s1]
    assert shared, 'the stage-2 DIRformer has the stage-1 layout'
    assert max((s2[k] - s1[k]).abs().max().item() for k in shared) > 0  # trained jointly

    out = stage2 / 'metrics.json'
    run_python([osp.join(REPO_ROOT, 'tools', 'test.py'), str(stage2 / 's2.py'),
                str(stage2 / 'run' / f'iter_{S2_ITERS}.pth'), '--work-dir',
                str(stage2 / 'test'), '--out', str(out)], timeout=600)
    metrics = json.loads(out.read_text())
    for prefix in ('CelebAHQ-thin256', 'CelebAHQ-thick256'):
        assert metrics[f'{prefix}/FID'] >= 0
        assert 0 <= metrics[f'{prefix}/LPIPS'] and -1 <= metrics[f'{prefix}/SSIM'] <= 1
    assert metrics['CelebAHQ-thin256/SSIM'] != metrics['CelebAHQ-thick256/SSIM']


def _places_config(root, iters):
    return f"""
_base_ = ['{REPO_ROOT}/configs/diffir_inpaint_places_s1.py']
model = dict(generator=dict({TINY_ARCH}),
             resnet_pl_loss=dict(weights_path='{root}/resnet_pl.pth'))
_augs = _base_.place_train_augs
for _t in _augs:
    if _t['type'] == 'PadIfNeeded':
        _t.update(min_height=64, min_width=64)
    if _t['type'] == 'RandomCrop':
        _t.update(height=64, width=64)
_pipeline = _base_.train_pipeline
for _step in _pipeline:
    if _step['type'] == 'SeededAlbumentations':
        _step['transforms'] = _augs
del _t, _step
train_dataloader = dict(batch_size=2, num_workers=0, dataset=dict(
    data_root='{root}/places', data_prefix=dict(gt='train'), pipeline=_pipeline))
train_cfg = dict(max_iters={iters}, val_interval=1000)
{NO_EVAL_CONFIG_LINES}visualizer = dict(vis_backends=[dict(type='LocalVisBackend')])
default_hooks = dict(logger=dict(interval=1),
                     checkpoint=dict(interval={iters // 2}, save_best=None))
randomness = dict(seed=0)
"""


def test_places_stage1_resume_is_bit_exact(data, tmp_path):
    cfg = tmp_path / 'places_s1.py'
    full = tmp_path / 'full'
    _train(_places_config(data, 4), cfg, full)
    resumed = tmp_path / 'resumed'
    resumed.mkdir()
    shutil.copy(full / 'iter_2.pth', resumed)
    (resumed / 'last_checkpoint').write_text(str(resumed / 'iter_2.pth'))
    log = _train(cfg.read_text(), cfg, resumed, '--resume')
    assert 'resumed epoch: 0, iter: 2' in log
    assert 'random states restored from the checkpoint of iter 2' in log
    a, b = _state(full / 'iter_4.pth'), _state(resumed / 'iter_4.pth')
    assert a['state_dict'].keys() == b['state_dict'].keys()
    differ = [k for k, v in a['state_dict'].items() if not torch.equal(v, b['state_dict'][k])]
    assert not differ, f'{len(differ)} tensors differ after --resume: {differ[:5]}'
    for part in ('generator', 'discriminator'):
        state_a, state_b = a['optimizer'][part]['state'], b['optimizer'][part]['state']
        assert state_a.keys() == state_b.keys() and state_a
        for idx, values in state_a.items():
            for key, value in values.items():
                assert torch.equal(torch.as_tensor(value), torch.as_tensor(state_b[idx][key]))
