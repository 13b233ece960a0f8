"""Validation protocol, intervals, V2 fine-tuning and seeds of every recipe vs the official YAMLs.

Each value below is transcribed from the official file named next to it (paths relative to the
root of the official DiffIR repository, snapshot 293f86c): ``val.val_freq``,
``logger.save_checkpoint_freq``, the ``datasets.val_*`` folders, ``val.metrics``
(``crop_border``, ``test_y_channel``), ``pretrain_network_d`` and ``manual_seed``.
"""
from pathlib import Path

import pytest
from mmengine import Config

from helpers import OWN_DATA_CONFIGS

CONFIGS = Path(__file__).resolve().parents[2] / 'configs'
RS = 'DiffIR-RealSR/options/'
DB = 'DiffIR-demotionblur/options/'
SG = 'DiffIR-SRGAN/options/'

# official val sets: (our prefix, LR folder, HR folder) as in the YAMLs' val_* entries
NTIRE = ('NTIRE2020-T1', 'track1-valid-input', 'track1-valid-gt')
AIM = ('AIM2019-T2', 'valid-input-noisy', 'valid-gt-clean')


def canon(scale):
    return ('RealSR-Canon', f'Canon/Test/{scale}/LR', f'Canon/Test/{scale}/HR')


GOPRO = ('GoPro', 'test/input', 'test/target')
URBAN = ('Urban100', 'LRbicx{s}', 'HR')
DIV2K = ('DIV2K100', 'LRbicx{s}', 'HR')

PSNR_Y0 = [('PSNR', 0, 'Y')]
PSNR_RGB0 = [('PSNR', 0, None)]
PSNR_Y4 = [('PSNR', 4, 'Y')]
PSNR_SSIM_Y4 = [('PSNR', 4, 'Y'), ('SSIM', 4, 'Y')]

# config: (official YAML, val_freq = save_checkpoint_freq, val sets, val metrics per set)
PROTOCOL = {
    'diffir_deblur_s1': (DB + 'train_DiffIRS1.yml', 5000, [GOPRO], PSNR_RGB0),
    'diffir_deblur_s2': (DB + 'train_DiffIRS2.yml', 5000, [GOPRO], PSNR_RGB0),
    'diffir_sr_s1': (RS + 'train_DiffIRS1_x4.yml', 5000, [NTIRE], PSNR_Y0),
    'diffir_sr_x2_s1': (RS + 'train_DiffIRS1_x2.yml', 5000, [canon(2)], PSNR_Y0),
    'diffir_sr_x1_s1': (RS + 'train_DiffIRS1_x1.yml', 5000, [canon(1)], PSNR_Y0),
    'diffir_sr_s2': (RS + 'train_DiffIRS2_x4.yml', 10000, [NTIRE], PSNR_Y0),
    'diffir_sr_x2_s2': (RS + 'train_DiffIRS2_x2.yml', 5000, [canon(2)], PSNR_Y0),
    'diffir_sr_x1_s2': (RS + 'train_DiffIRS2_x1.yml', 5000, [canon(1)], PSNR_Y0),
    'diffir_sr_s2_gan': (RS + 'train_DiffIRS2_GAN_x4.yml', 10000, [NTIRE, AIM, canon(4)],
                         PSNR_SSIM_Y4),
    'diffir_sr_s2_gan_v2': (RS + 'train_DiffIRS2_GAN_x4_V2.yml', 10000,
                            [NTIRE, AIM, canon(4)], PSNR_SSIM_Y4),
    'diffir_sr_s2_gan_v2_finetune': (RS + 'finetune_DiffIRS2_GAN_x4_V2.yml', 10000,
                                     [NTIRE, AIM, canon(4)], PSNR_SSIM_Y4),
    'diffir_sisr_x4_s1': (SG + 'train_DiffIRS1_x4.yml', 5000, [URBAN, DIV2K], PSNR_Y0),
    'diffir_sisr_x4_s2': (SG + 'train_DiffIRS2_x4.yml', 5000, [URBAN, DIV2K], PSNR_Y0),
    'diffir_sisr_x4_s2_gan': (SG + 'train_DiffIRS2_GAN_x4.yml', 5000, [URBAN, DIV2K], PSNR_Y0),
    'diffir_sisr_x2_s1': (SG + 'train_DiffIRS1_x2.yml', 5000, [URBAN, DIV2K], PSNR_Y0),
    'diffir_sisr_x2_s2': (SG + 'train_DiffIRS2_x2.yml', 5000, [URBAN, DIV2K], PSNR_Y0),
    'diffir_sisr_x2_s2_gan': (SG + 'train_DiffIRS2_GAN_x2.yml', 5000, [URBAN, DIV2K], PSNR_Y0),
}
for _s in (2, 1):
    for _name, _yml in (('', 'train_DiffIRS2_GAN_x{s}.yml'),
                        ('_v2', 'train_DiffIRS2_GAN_x{s}_V2.yml'),
                        ('_v2_finetune', 'finetune_DiffIRS2_GAN_x{s}_V2.yml')):
        PROTOCOL[f'diffir_sr_x{_s}_s2_gan{_name}'] = (RS + _yml.format(s=_s), 50000, [canon(_s)],
                                                      PSNR_Y4)

#: finetune_DiffIRS2_GAN_x*_V2.yml = train_DiffIRS2_GAN_x*_V2.yml + pretrain_network_d
#: (param_key_d: params, strict_load_d: true), started from the V1 GAN model.
FINETUNE = {f'diffir_sr{s}_s2_gan_v2_finetune': (f'diffir_sr{s}_s2_gan_v2', f'diffir_sr{s}_s2_gan')
            for s in ('', '_x2', '_x1')}


def _load(name):
    return Config.fromfile(str(CONFIGS / f'{name}.py'))


def test_every_config_has_a_protocol_row():
    # the inpainting recipes (LaMa protocol) have their own table: test_official_inpaint_hparams.py
    assert {p.stem for p in CONFIGS.glob('diffir_*.py')
            if not p.stem.startswith('diffir_inpaint')} - OWN_DATA_CONFIGS == set(PROTOCOL)


def _val_sets(cfg):
    loaders = cfg.val_dataloader if isinstance(cfg.val_dataloader, list) else [cfg.val_dataloader]
    evaluators = cfg.val_evaluator
    if evaluators and evaluators[0].get('type') != 'Evaluator':  # one loader, a metric list
        evaluators = [dict(type='Evaluator', metrics=evaluators)]
    assert len(loaders) == len(evaluators)
    return [(dl.dataset, ev['metrics']) for dl, ev in zip(loaders, evaluators)]


@pytest.mark.parametrize('name', sorted(PROTOCOL))
def test_validation_protocol_and_intervals(name):
    yml, freq, sets, metrics = PROTOCOL[name]
    cfg = _load(name)
    scale = cfg.model.generator.scale
    assert cfg.train_cfg.val_interval == freq, f'{name}: val_freq of {yml}'
    assert cfg.default_hooks.checkpoint.interval == freq, f'{name}: save_checkpoint_freq of {yml}'
    found = _val_sets(cfg)
    assert len(found) == len(sets), f'{name}: val sets of {yml}'
    keys = set()
    for (dataset, got), (prefix, lq, gt) in zip(found, sets):
        assert dataset.data_prefix == dict(img=lq.format(s=scale), gt=gt), f'{name}: {yml}'
        want = [(m, crop, conv) for m, crop, conv in metrics]
        assert [(m.type, m.crop_border, m.get('convert_to')) for m in got] == want, \
            f'{name}: val metrics of {yml}'
        assert all(m.prefix == prefix for m in got)
        keys |= {f'{m.prefix}/{m.type}' for m in got}
    # save_best names a key the validation really produces
    assert cfg.default_hooks.checkpoint.save_best in keys


@pytest.mark.parametrize('name', sorted(PROTOCOL))
def test_seed_with_rank_and_exact_resume_hook(name):
    """manual_seed: 0 in every official YAML, seeded per rank (official: manual_seed + rank)."""
    cfg = _load(name)
    assert cfg.randomness.seed == 0, f'{name}: manual_seed of {PROTOCOL[name][0]}'
    assert cfg.randomness.diff_rank_seed is True
    assert cfg.default_hooks.random_state.type == 'RandomStateCheckpointHook'


@pytest.mark.parametrize('name', sorted(FINETUNE))
def test_v2_finetune_starts_from_v1_generator_and_discriminator(name):
    v2_name, v1_name = FINETUNE[name]
    cfg, v2, v1 = _load(name), _load(v2_name), _load(v1_name)
    v1_last = f'{v1.work_dir.rstrip("/").split("/")[-1]}/iter_{v1.train_cfg.max_iters}.pth'
    assert cfg.model.stage2_checkpoint.endswith(v1_last)  # pretrain_network_g
    assert cfg.model.discriminator_checkpoint.endswith(v1_last)  # pretrain_network_d
    # everything else is the V2 recipe (l1_gt_usm / percep_gt_usm True, gan_gt_usm False)
    for key in ('stage2_checkpoint', 'discriminator_checkpoint'):
        cfg.model.pop(key)
        v2.model.pop(key, None)
    assert cfg.model == v2.model
    assert (cfg.model.train_cfg.l1_gt_usm, cfg.model.train_cfg.percep_gt_usm,
            cfg.model.train_cfg.gan_gt_usm) == (True, True, False)
    for key in ('train_cfg', 'optim_wrapper', 'param_scheduler', 'train_dataloader',
                'val_dataloader', 'val_evaluator', 'default_hooks'):
        assert cfg[key] == v2[key], key


@pytest.mark.parametrize('scale,base', [(4, 'realsr_df2k_ost'), (2, 'realsr_df2k_ost_x2'),
                                        (1, 'realsr_df2k_ost_x1')])
def test_realsr_test_protocol(scale, base):
    """Test sets of test_DiffIRS2_GAN_x{scale}.yml, metrics of DiffIR-RealSR/Metric/PSNR.py."""
    cfg = Config.fromfile(str(CONFIGS / '_base_' / 'datasets' / f'{base}.py'))
    sets = [canon(scale), NTIRE, AIM] if scale == 4 else [canon(scale)]
    assert [dl.dataset.data_prefix for dl in cfg.test_dataloader] == [
        dict(img=lq, gt=gt) for _, lq, gt in sets]
    for evaluator, (prefix, _, _) in zip(cfg.test_evaluator, sets, strict=True):
        psnr, ssim = evaluator.metrics[:2]
        assert [(m.type, m.crop_border, m.convert_to, m.prefix) for m in (psnr, ssim)] == [
            ('PSNR', 4, 'Y', prefix), ('SSIM', 4, 'Y', prefix)]
