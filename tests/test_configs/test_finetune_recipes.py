"""The own-data fine-tuning recipes: start from a trained model, one-GPU settings, the held-out
split for validation and testing, the best checkpoint kept. (They run end to end in
tests/test_e2e/test_own_data_finetune.py.)"""
from pathlib import Path

import pytest
from mmengine import Config

from helpers import OWN_DATA_CONFIGS

CONFIGS = Path(__file__).resolve().parents[2] / 'configs'
#: config -> (data_root, training split prefix key, save_best metric)
EXPECTED = {
    'diffir_deblur_finetune': ('data/own_pairs', dict(img='train/input', gt='train/target'),
                               'val/PSNR'),
    'diffir_sr_finetune': ('data/own_images', dict(gt='train'), 'val/PSNR'),
    'diffir_sisr_finetune': ('data/own_images', dict(gt='train'), 'val/PSNR'),
    'diffir_inpaint_finetune': ('data/own_images', dict(gt='train'), 'val/SSIM'),
}


def _loaders(value):
    return value if isinstance(value, list) else [value]


def test_every_own_data_recipe_is_checked():
    assert set(EXPECTED) == OWN_DATA_CONFIGS
    assert all((CONFIGS / f'{name}.py').is_file() for name in EXPECTED)


@pytest.mark.parametrize('name', sorted(EXPECTED))
def test_finetune_recipe(name):
    cfg = Config.fromfile(str(CONFIGS / f'{name}.py'))
    root, train_prefix, best = EXPECTED[name]
    assert cfg.model.stage2_checkpoint  # starts from a trained stage-2 model
    train = cfg.train_dataloader
    assert train.dataset.data_root == root and dict(train.dataset.data_prefix) == train_prefix
    held_out = [d.dataset for d in _loaders(cfg.val_dataloader) + _loaders(cfg.test_dataloader)]
    for dataset in held_out:
        assert dataset.data_root == root
        assert all(p.startswith('val') for p in dataset.data_prefix.values())
    assert 10000 <= cfg.train_cfg.max_iters <= 100000
    assert cfg.train_cfg.val_interval <= cfg.train_cfg.max_iters // 5
    assert cfg.default_hooks.checkpoint.save_best == best
    # one GPU; --auto-scale-lr scales from the one-GPU batch
    assert cfg.auto_scale_lr.base_batch_size == train.batch_size <= 8
    generator_lr = (cfg.optim_wrapper.generator.optimizer.lr)
    assert generator_lr <= 2e-5
    schedule = cfg.param_scheduler['generator']
    assert schedule[0]['type'] == 'LinearLR'  # warm-up
    if cfg.model.type == 'DiffIRS2GAN':  # a fresh discriminator trains alone first
        assert cfg.model.train_cfg.disc_init_steps == schedule[0]['begin'] > 0
    if cfg.model.type in ('DiffIRS2', 'DiffIRS2GAN') and 'custom_hooks' in cfg:
        assert any(h['type'] == 'GeneratorEMAHook' for h in cfg.custom_hooks)
