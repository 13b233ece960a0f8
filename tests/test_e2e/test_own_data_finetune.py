"""Your own data in three commands, end to end on the CPU with the real fine-tune recipes.

Each test: scikit-image photos -> ``tools/prepare_data.py`` (``images`` or ``pairs``) -> a tiny
network written in a *released* key layout (BasicSR ``params`` / ``params_ema`` with ``G.*``,
``condition.*``, ``denoise.*`` and the ``diffusion.*`` duplicates; for inpainting LaMa's
Lightning ``last.ckpt`` with ``generator.*`` + ``generatorS1.*``) -> ``tools/train.py`` on the
real ``configs/diffir_<task>_finetune.py``, shrunk with ``--cfg-options`` only (architecture,
patch, batch, iterations and the schedule, the EMA decay; a random start learns at 1e-3) ->
``tools/test.py`` on the held-out split. The start is random, so the run must lower the
training loss and beat the starting checkpoint (converted with
``tools/convert_official_ckpt.py``) on the held-out images.
"""
import glob
import json
import os
import os.path as osp

import cv2
import pytest
import torch

from helpers import REPO_ROOT, TOOLS_DIR, run_python, sample_image

PHOTOS = ('astronaut', 'coffee', 'chelsea', 'rocket', 'immunohistochemistry', 'colorwheel')
TINY = dict(dim=8, num_blocks=[1, 1, 1, 1], num_refinement_blocks=1, n_encoder_res=1)
ITERS = 40
#: The recipes' EMA (decay 0.999) would hardly move in 40 iterations.
EMA_40 = 'custom_hooks.0.momentum=0.2'


def _tiny_options(inpaint=False):
    arch = dict(TINY, num_refinement_blocks=0) if inpaint else TINY
    return [f'model.generator.{k}={v}'.replace(' ', '') for k, v in arch.items()]


def _released(folder, preset, inpaint=False):
    """Random tiny stage-1 / stage-2 networks written as the released files are."""
    from diffir_mm.archs import build_diffir, ours_to_official

    arch = dict(TINY, num_refinement_blocks=0) if inpaint else TINY
    torch.manual_seed(0)
    s1 = build_diffir(preset, 1, **arch)
    s2 = build_diffir(preset, 2, **arch)
    s1_sd = ours_to_official(s1.state_dict())
    s2_sd = ours_to_official(s2.state_dict(), with_duplicates=True, net=s2)
    os.makedirs(folder, exist_ok=True)
    if inpaint:  # experiments/<name>/models/last.ckpt: S2 generator, S1 teacher, discriminator
        from diffir_mm.models.discriminators import NLayerPatchDiscriminator

        state = {f'generator.{k}': v for k, v in s2_sd.items()}
        state.update({f'generatorS1.{k}': v for k, v in s1_sd.items()})
        disc = NLayerPatchDiscriminator(ndf=8).state_dict()
        state.update({f'discriminator.{k}': v for k, v in disc.items()})
        path = osp.join(folder, 'last.ckpt')
        torch.save({'state_dict': state, 'global_step': 0}, path)
        return path, None
    s2_path, s1_path = osp.join(folder, 'DiffIRS2.pth'), osp.join(folder, 'DiffIRS1.pth')
    torch.save({'params': s2_sd, 'params_ema': s2_sd}, s2_path)
    torch.save({'params': s1_sd, 'params_ema': s1_sd}, s1_path)
    return s2_path, s1_path


def _photos(folder, size=96, blur=None):
    os.makedirs(folder, exist_ok=True)
    for name in PHOTOS:
        img = sample_image(name, size)[..., ::-1]
        cv2.imwrite(osp.join(folder, f'{name}.png'), blur(img) if blur else img)


def _data_options(root, test_loaders=('test_dataloader', )):
    return [f'{loader}.dataset.data_root={root}'
            for loader in ('train_dataloader', 'val_dataloader', *test_loaders)]


def _train(config, work_dir, options):
    run_python([osp.join(TOOLS_DIR, 'train.py'), config, '--work-dir', str(work_dir),
                '--cfg-options', *options], timeout=900)
    lines = open(glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))[-1]).read()
    return [json.loads(line) for line in lines.splitlines()]


def _test(config, checkpoint, work_dir, options):
    out = osp.join(work_dir, f'metrics_{osp.basename(checkpoint)}.json')
    run_python([osp.join(TOOLS_DIR, 'test.py'), config, checkpoint, '--work-dir', str(work_dir),
                '--out', out, '--cfg-options', *options], timeout=600)
    return json.load(open(out))


def _converted(src, dst, task, teacher=None):
    arch = dict(TINY, num_refinement_blocks=0) if task == 'inpaint' else TINY
    args = [osp.join(TOOLS_DIR, 'convert_official_ckpt.py'), src, dst, '--task', task,
            '--stage', '2', '--arch'] + [f'{k}={v}'.replace(' ', '') for k, v in arch.items()] \
        + (['--teacher', teacher] if teacher else [])
    run_python(args)
    return dst


def _loss_falls(records, key):
    values = [r[key] for r in records if key in r]
    assert len(values) >= 10, records[:3]
    head, tail = values[:5], values[-5:]
    assert sum(tail) / 5 < 0.8 * sum(head) / 5, values


def _finetune_beats_start(tmp_path, name, data, start, common, train_options, loss, best,
                          metrics):
    """Fine-tune with the real recipe, then score the start and the best checkpoint."""
    config = osp.join(REPO_ROOT, 'configs', f'diffir_{name}_finetune.py')
    options = common + train_options + [
        'train_dataloader.batch_size=2', 'train_dataloader.num_workers=0',
        f'train_cfg.max_iters={ITERS}', f'train_cfg.val_interval={ITERS}',
        'optim_wrapper.generator.optimizer.lr=1e-3', 'param_scheduler.generator.0.begin=0',
        'param_scheduler.generator.0.end=5', 'param_scheduler.generator.1.begin=5',
        f'param_scheduler.generator.1.end={ITERS}', 'default_hooks.logger.interval=1',
        f'default_hooks.checkpoint.interval={ITERS}', 'randomness.seed=0']
    _loss_falls(_train(config, tmp_path / 'work', options), loss)
    found = glob.glob(str(tmp_path / 'work' / f'best_{best.replace("/", "_")}_iter_*.pth'))
    assert len(found) == 1
    before = _test(config, start, tmp_path / 'test', common)
    after = _test(config, found[0], tmp_path / 'test', common)
    print(f'{name}: start {before}, fine-tuned {after}')
    for key in metrics:
        assert after[key] > before[key] + 0.5, (before, after)


@pytest.mark.timeout(1800)
def test_images_to_sisr_finetune(tmp_path):
    _photos(tmp_path / 'photos')
    data = tmp_path / 'own_images'
    run_python([osp.join(TOOLS_DIR, 'prepare_data.py'), 'images', str(tmp_path / 'photos'),
                str(data), '--val-ratio', '0.34', '--min-size', '64', '--workers', '2'])
    s2, s1 = _released(tmp_path / 'released', 'sr_x4')
    common = _tiny_options() + _data_options(data) + [
        'model.discriminator.mid_channels=8', 'model.perceptual_loss=None']
    _finetune_beats_start(
        tmp_path, 'sisr', data, _converted(s2, str(tmp_path / 'start.pth'), 'sr', teacher=s1),
        common, [f'model.stage2_checkpoint={s2}', f'model.stage1_checkpoint={s1}',
                 'model.train_cfg.disc_init_steps=0', EMA_40,
                 'train_dataloader.dataset.pipeline.1.min_size=64',
                 'train_dataloader.dataset.pipeline.2.crop_size=(64,64)'],
        'loss_pix', 'val/PSNR', ['val/PSNR'])


@pytest.mark.timeout(1800)
def test_pairs_to_deblur_finetune(tmp_path):
    _photos(tmp_path / 'sharp')
    _photos(tmp_path / 'blurry', blur=lambda img: cv2.GaussianBlur(img, (7, 7), 2.0))
    data = tmp_path / 'own_pairs'
    run_python([osp.join(TOOLS_DIR, 'prepare_data.py'), 'pairs', str(tmp_path / 'blurry'),
                str(tmp_path / 'sharp'), str(data), '--val-ratio', '0.34', '--crop', '48'])
    s2, s1 = _released(tmp_path / 'released', 'deblur')
    common = _tiny_options() + _data_options(data) + [
        'val_dataloader.dataset.pipeline.2.crop_size=(64,64)']
    _finetune_beats_start(
        tmp_path, 'deblur', data,
        _converted(s2, str(tmp_path / 'start.pth'), 'deblur', teacher=s1), common,
        [f'model.stage2_checkpoint={s2}', f'model.stage1_checkpoint={s1}', EMA_40,
         'train_dataloader.dataset.pipeline.3.gt_patch_size=48'],
        'loss_pix', 'val/PSNR', ['val/PSNR'])


@pytest.mark.timeout(1800)
def test_images_to_inpaint_finetune(tmp_path):
    _photos(tmp_path / 'photos', size=64)
    data = tmp_path / 'own_images'
    run_python([osp.join(TOOLS_DIR, 'prepare_data.py'), 'images', str(tmp_path / 'photos'),
                str(data), '--val-ratio', '0.34'])
    last, _ = _released(tmp_path / 'DiffIRS2-place' / 'models', 'inpaint', inpaint=True)
    # LaMa's samples of the held-out photos at 128 instead of the protocol's 512
    eval_size = ['dataset.pipeline.1.short_side=128']
    test_loaders = ('test_dataloader.0', 'test_dataloader.1')  # thin and thick masks
    common = _tiny_options(inpaint=True) + _data_options(data, test_loaders) + [
        f'{loader}.{option}' for loader in ('val_dataloader', *test_loaders)
        for option in eval_size] + [
        'model.discriminator.ndf=8', 'model.resnet_pl_loss=None']
    _finetune_beats_start(
        tmp_path, 'inpaint', data, _converted(last, str(tmp_path / 'start.pth'), 'inpaint'),
        common, [f'model.stage2_checkpoint={last}', f'model.discriminator_checkpoint={last}',
                 # without ResNet-PL the holes learn from L1 as well (the demo does the same)
                 'model.masked_l1_loss.weight_missing=10.0',
                 'train_dataloader.dataset.pipeline.1.transforms.4.height=64',
                 'train_dataloader.dataset.pipeline.1.transforms.4.width=64'],
        'loss_l1_masked', 'val/SSIM', ['thin512/PSNR', 'thick512/PSNR'])
