"""A tiny GAN-stage config (``configs/diffir_sisr_x4_s2_gan.py``) through tools/train.py.

Starts from tiny stage-1/stage-2 checkpoints, checks that generator and discriminator both
update, that every loss term is logged, and that ``--resume`` continues from the checkpoint.
"""
import glob
import json
import os.path as osp
import shutil

import cv2
import torch

from diffir_mm.archs import DiffIRS1Net, DiffIRS2Net
from helpers import NO_EVAL_CONFIG_LINES, REPO_ROOT, run_python, sample_image

ARCH = dict(task='sr', scale=4, dim=8, num_blocks=[1, 1, 1, 1], num_refinement_blocks=1,
            ffn_expansion_factor=2.2, LayerNorm_type='BiasFree', n_encoder_res=1)


def _save(net, path):
    torch.save({'state_dict': {f'generator.{k}': v for k, v in net.state_dict().items()}}, path)


def _config(root, s1, s2, iters):
    arch = {k: v for k, v in ARCH.items() if k not in ('task', 'scale')}
    return f"""
_base_ = ['{REPO_ROOT}/configs/diffir_sisr_x4_s2_gan.py']
model = dict(generator=dict(**{arch!r}), stage1_checkpoint='{s1}', stage2_checkpoint='{s2}',
             discriminator=dict(mid_channels=8),
             perceptual_loss=dict(vgg_path=None, allow_random_weights=True))
train_pipeline = [dict(type='LoadImageFromFile', key='img', channel_order='rgb'),
                  dict(type='LoadImageFromFile', key='gt', channel_order='rgb'),
                  dict(type='PackInputs')]
train_dataloader = dict(batch_size=2, num_workers=0,
                        dataset=dict(data_root='{root}', data_prefix=dict(img='LR', gt='HR'),
                                     ann_file='', pipeline=train_pipeline))
train_cfg = dict(max_iters={iters}, val_interval=1000)
{NO_EVAL_CONFIG_LINES}custom_hooks = [_base_.ema_hook]
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=2, save_best=None))
visualizer = dict(vis_backends=[dict(type='LocalVisBackend')])
randomness = dict(seed=0)
"""


def _load(path):
    from diffir_mm.checkpoint import read_checkpoint
    return read_checkpoint(path)['state_dict']


def _changed(a, b, prefix):
    return any(not torch.equal(a[k], b[k]) for k in a if k.startswith(prefix))


def test_gan_stage_trains_saves_and_resumes(tmp_path):
    root = tmp_path / 'pairs'
    for name in ('astronaut', 'coffee'):
        gt = sample_image(name, 32)
        for sub, img in (('HR', gt), ('LR', cv2.resize(gt, (8, 8), interpolation=cv2.INTER_AREA))):
            (root / sub).mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(root / sub / f'{name}.png'), img[..., ::-1])
    torch.manual_seed(0)
    _save(DiffIRS1Net(**ARCH), tmp_path / 's1.pth')
    s2 = DiffIRS2Net(**ARCH)
    _save(s2, tmp_path / 's2.pth')

    work = tmp_path / 'work'
    cfg2, cfg4 = tmp_path / 'gan2.py', tmp_path / 'gan4.py'
    cfg2.write_text(_config(root, tmp_path / 's1.pth', tmp_path / 's2.pth', 2))
    cfg4.write_text(_config(root, tmp_path / 's1.pth', tmp_path / 's2.pth', 4))
    train = osp.join(REPO_ROOT, 'tools', 'train.py')
    run_python([train, str(cfg2), '--work-dir', str(work)], timeout=600)
    first = _load(work / 'iter_2.pth')
    init = {f'generator.{k}': v for k, v in s2.state_dict().items()}
    assert _changed(init, first, 'generator.'), 'generator did not update'
    assert any(k.startswith('discriminator.') for k in first)

    shutil.copy(work / 'iter_2.pth', tmp_path / 'iter_2_copy.pth')
    proc = run_python([train, str(cfg4), '--work-dir', str(work), '--resume'], timeout=600)
    assert 'resumed' in proc.stdout.lower() or 'resume' in proc.stdout.lower()
    second = _load(work / 'iter_4.pth')
    assert _changed(first, second, 'generator.') and _changed(first, second, 'discriminator.')

    logs = []
    for path in glob.glob(str(work / '*' / 'vis_data' / 'scalars.json')):
        with open(path) as f:
            logs += [json.loads(line) for line in f if line.strip()]
    iters = sorted(r['iter'] for r in logs if 'loss_gan' in r)
    assert iters == [1, 2, 3, 4], iters  # the resumed run continued at iteration 3
    for key in ('loss_pix', 'loss_prior', 'loss_perceptual', 'loss_gan', 'loss_d_real',
                'loss_d_fake', 'kd_kl'):
        assert all(key in r for r in logs if 'loss_gan' in r), key
