"""Every recipe config against a table of the official DiffIR hyper-parameters.

The table transcribes the official YAMLs (``DiffIR-demotionblur``, ``DiffIR-RealSR``,
``DiffIR-SRGAN`` ``options/*.yml``; see ``docs/advanced_guides/method.md`` §2.5 and §4) so
that recipes cannot drift silently. Only mmengine's ``Config`` is needed.
"""
from pathlib import Path

import pytest
from mmengine import Config

CONFIGS = Path(__file__).resolve().parents[2] / 'configs'

ARCH = {
    'deblur': dict(task='deblur', dim=48, num_blocks=[3, 5, 6, 6], num_refinement_blocks=4,
                   heads=[1, 2, 4, 8], ffn_expansion_factor=2.0, bias=False,
                   LayerNorm_type='WithBias', n_encoder_res=5),
    'sr': dict(task='sr', dim=64, num_blocks=[13, 1, 1, 1], num_refinement_blocks=13,
               heads=[1, 2, 4, 8], ffn_expansion_factor=2.2, bias=False,
               LayerNorm_type='BiasFree', n_encoder_res=9),
}
DIFFUSION = dict(n_denoise_res=1, timesteps=4, linear_start=0.1, linear_end=0.99)
PROGRESSIVE = dict(mini_batch_sizes=[8, 4, 2, 2, 1, 1], gt_sizes=[192, 256, 320, 384, 464, 512])
ADAM_99 = (0.9, 0.99)
PERCEPTUAL = {'conv1_2': 0.1, 'conv2_2': 0.1, 'conv3_4': 1.0, 'conv4_4': 1.0, 'conv5_4': 1.0}
REALSR_DEGRADATION = dict(
    first_sigma=[0.2, 3], second_sigma=[0.2, 1.5], second_blur_prob=0.8, sinc_prob=0.1,
    final_sinc_prob=0.8, resize_prob1=[0.2, 0.7, 0.1], resize_range1=[0.15, 1.5],
    resize_prob2=[0.3, 0.4, 0.3], resize_range2=[0.3, 1.2], noise1=[1, 30], noise2=[1, 25],
    poisson1=[0.05, 3], poisson2=[0.05, 2.5], gray_noise=0.4, gaussian_prob=0.5,
    jpeg=[30, 95], gt_size=256)

# name: (arch, scale, stage, iters, batch/GPU, lr, betas, schedule, ema, extra)
TABLE = {
    'diffir_deblur_s1': ('deblur', 1, 1, 300000, 8, 2e-4, (0.9, 0.999),
                         dict(type='CosineRestartCyclicLR', periods=[92000, 208000],
                              restart_weights=[1, 1], eta_mins=[2.85e-4, 1e-6]), True,
                         dict(progressive=[92000, 80000, 38000, 33000, 33000, 24000])),
    'diffir_deblur_s2': ('deblur', 1, 2, 400000, 8, 2e-4, ADAM_99,
                         dict(encoder=[60000], encoder_gamma=0.1,
                              generator=[180000, 260000, 340000], generator_gamma=0.5), True,
                         dict(encoder_iters=100000,
                              progressive=[150000, 60000, 50000, 60000, 40000, 40000])),
    'diffir_sr_s1': ('sr', 4, 1, 1000000, 9, 2e-4, ADAM_99,
                     dict(type='MultiStepLR', milestones=[500000, 700000], gamma=0.5), True,
                     dict(realsr=True)),
    'diffir_sr_x2_s1': ('sr', 2, 1, 1000000, 9, 2e-4, ADAM_99,
                        dict(type='MultiStepLR', milestones=[500000, 700000], gamma=0.5), False,
                        dict(realsr=True)),
    'diffir_sr_x1_s1': ('sr', 1, 1, 1000000, 9, 2e-4, ADAM_99,
                        dict(type='MultiStepLR', milestones=[500000, 700000], gamma=0.5), False,
                        dict(realsr=True)),
    'diffir_sisr_x4_s1': ('sr', 4, 1, 1000000, 8, 2e-4, ADAM_99,
                          dict(type='MultiStepLR', milestones=[500000, 700000], gamma=0.5), True,
                          dict()),
    'diffir_sisr_x2_s1': ('sr', 2, 1, 1000000, 8, 2e-4, ADAM_99,
                          dict(type='MultiStepLR', milestones=[500000, 700000], gamma=0.5), True,
                          dict()),
    'diffir_sisr_x4_s2': ('sr', 4, 2, 1000000, 8, 2e-4, ADAM_99,
                          dict(encoder=[500000, 700000], encoder_gamma=0.5,
                               generator=[500000, 700000], generator_gamma=0.5), True,
                          dict(encoder_iters=0)),
    'diffir_sisr_x2_s2': ('sr', 2, 2, 1000000, 8, 2e-4, ADAM_99,
                          dict(encoder=[500000, 700000], encoder_gamma=0.5,
                               generator=[500000, 700000], generator_gamma=0.5), True,
                          dict(encoder_iters=0)),
}
for _s in ('', '_x2', '_x1'):
    _scale = {'': 4, '_x2': 2, '_x1': 1}[_s]
    TABLE[f'diffir_sr{_s}_s2'] = (
        'sr', _scale, 2, 1000000, 9, 2e-4, ADAM_99,
        dict(encoder=[60000], encoder_gamma=0.1, generator=[700000], generator_gamma=0.5), True,
        dict(encoder_iters=100000, realsr=True))
    for _suffix, _v2 in (('', False), ('_v2', True), ('_v2_finetune', True)):
        TABLE[f'diffir_sr{_s}_s2_gan{_suffix}'] = (
            'sr', _scale, 'gan', 400000, 9, 1e-4, ADAM_99,
            dict(generator=[300000], generator_gamma=0.5, d_lr=1e-4), True,
            dict(realsr=True, usm=_v2))
for _scale in (4, 2):
    TABLE[f'diffir_sisr_x{_scale}_s2_gan'] = (
        'sr', _scale, 'gan', 400000, 8, 2e-4, ADAM_99,
        dict(generator=[200000], generator_gamma=0.5, d_lr=1e-4, d_milestones=[200000]), True,
        dict(usm=False))


def test_every_config_is_in_the_table():
    # the inpainting recipes have their own table (test_official_inpaint_hparams.py)
    names = {p.stem for p in CONFIGS.glob('diffir_*.py')
             if not p.stem.startswith('diffir_inpaint')}
    assert names == set(TABLE), f'untabled: {names - set(TABLE)}; missing: {set(TABLE) - names}'


def _find(pipeline, type_name):
    return [step for step in pipeline if step.get('type') == type_name]


def _check_realsr_pipeline(cfg, scale, usm):
    # default: the batched device-side stage, whose settings equal those of the CPU option
    # (tests/test_datasets/test_batched_degradation.py); the values are checked on the latter
    assert cfg.model.data_preprocessor.type == 'RealESRGANDegradationPreprocessor'
    assert cfg.model.data_preprocessor.degrade_unsharp_gt == usm
    pipe = cfg.train_pipeline_cpu_usm_source if usm else cfg.train_pipeline_cpu
    assert _find(pipe, 'SetValues')[0]['dictionary']['scale'] == scale
    flips = _find(pipe, 'Flip')
    assert flips and all(f['direction'] == 'horizontal' for f in flips)  # hflip on, no rot
    assert not _find(pipe, 'RandomTransposeHW')
    assert _find(pipe, 'PairedRandomCrop')[0]['gt_patch_size'] == REALSR_DEGRADATION['gt_size']
    blurs = _find(pipe, 'RealESRGANRandomBlur')
    first, second = blurs[0]['params'], blurs[1]['params']
    assert first['sigma_x'] == REALSR_DEGRADATION['first_sigma']
    assert second['sigma_x'] == REALSR_DEGRADATION['second_sigma']
    assert second['prob'] == REALSR_DEGRADATION['second_blur_prob']
    probs = dict(zip(first['kernel_list'], first['kernel_prob']))
    assert probs['sinc'] == pytest.approx(REALSR_DEGRADATION['sinc_prob'])
    assert probs['iso'] == pytest.approx(0.45 * 0.9) and probs['aniso'] == pytest.approx(0.25 * 0.9)
    resizes = _find(pipe, 'RealESRGANRandomResize')
    assert resizes[0]['params']['resize_mode_prob'] == REALSR_DEGRADATION['resize_prob1']
    assert resizes[0]['params']['resize_scale'] == REALSR_DEGRADATION['resize_range1']
    assert resizes[1]['params']['resize_mode_prob'] == REALSR_DEGRADATION['resize_prob2']
    assert resizes[1]['params']['resize_scale'] == REALSR_DEGRADATION['resize_range2']
    noises = _find(pipe, 'RealESRGANRandomNoise')
    assert noises[0]['params']['gaussian_sigma'] == REALSR_DEGRADATION['noise1']
    assert noises[1]['params']['gaussian_sigma'] == REALSR_DEGRADATION['noise2']
    assert noises[0]['params']['poisson_scale'] == REALSR_DEGRADATION['poisson1']
    assert noises[1]['params']['poisson_scale'] == REALSR_DEGRADATION['poisson2']
    assert noises[0]['params']['gray_noise_prob'] == REALSR_DEGRADATION['gray_noise']
    assert noises[0]['params']['noise_prob'] == [0.5, 0.5]
    jpeg = _find(pipe, 'RandomJPEGCompression')[0]
    assert jpeg['params']['quality'] == REALSR_DEGRADATION['jpeg']
    final = _find(pipe, 'RandomChoice')[0]
    assert final['prob'] == [0.5, 0.5]
    sinc = [t for t in final['transforms'][0] if t['type'] == 'RealESRGANRandomBlur'][0]
    assert sinc['params']['prob'] == REALSR_DEGRADATION['final_sinc_prob']
    copy = _find(pipe, 'CopyValues')[0]
    assert copy['src_keys'] == (['gt_unsharp'] if usm else ['gt'])


@pytest.mark.parametrize('name', sorted(TABLE))
def test_config_matches_official(name):
    arch, scale, stage, iters, batch, lr, betas, sched, ema, extra = TABLE[name]
    cfg = Config.fromfile(str(CONFIGS / f'{name}.py'))
    model = cfg.model
    gen = dict(model.generator)
    for key, value in ARCH[arch].items():
        assert gen[key] == value, f'{name}: generator.{key}={gen[key]!r}, official {value!r}'
    assert gen['scale'] == scale
    assert cfg.train_cfg.max_iters == iters
    assert cfg.train_dataloader.batch_size == batch
    assert model.pixel_loss.type == 'L1Loss' and model.pixel_loss.loss_weight == 1.0
    assert model.get('is_use_ema', True) is ema
    hook_types = [h['type'] for h in cfg.custom_hooks]
    assert ('GeneratorEMAHook' in hook_types) is ema
    if ema:
        hook = [h for h in cfg.custom_hooks if h['type'] == 'GeneratorEMAHook'][0]
        assert hook['momentum'] == pytest.approx(1 - 0.999)
    dp = model.data_preprocessor
    assert dp.mean == [0.] * 3 and dp.std == [255.] * 3 and dp.output_channel_order == 'RGB'

    if stage == 1:
        assert model.type == 'DiffIRS1' and gen['type'] == 'DiffIRS1Net'
        opt = cfg.optim_wrapper.optimizer
        assert (opt.type, opt.lr, tuple(opt.betas), opt.weight_decay) == ('Adam', lr, betas, 0)
        for key, value in sched.items():
            assert cfg.param_scheduler[key] == value, f'{name}: scheduler {key}'
    else:
        assert gen['type'] == 'DiffIRS2Net'
        for key, value in DIFFUSION.items():
            assert gen[key] == value
        assert model.prior_loss.type == 'L1Loss' and model.prior_loss.loss_weight == 1.0
        assert model.kd_tau == 0.15
        assert model.stage1_checkpoint
        g_opt = cfg.optim_wrapper.generator.optimizer
        assert (g_opt.type, g_opt.lr, tuple(g_opt.betas)) == ('Adam', lr, betas)
        g_sched = cfg.param_scheduler.generator[0]
        assert g_sched.milestones == sched['generator']
        assert g_sched.gamma == sched['generator_gamma']
        assert cfg.model_wrapper_cfg.type == 'MMSeparateDistributedDataParallel'
    if stage == 2:
        assert model.type == 'DiffIRS2'
        assert model.train_cfg.encoder_iters == extra['encoder_iters']
        e_opt = cfg.optim_wrapper.encoder
        assert e_opt.optimizer.lr == lr and tuple(e_opt.optimizer.betas) == betas
        assert e_opt.modules == [r'generator(\.module)?\.cpen', r'generator(\.module)?\.denoiser']
        e_sched = cfg.param_scheduler.encoder[0]
        assert e_sched.milestones == sched['encoder'] and e_sched.gamma == sched['encoder_gamma']
    if stage == 'gan':
        assert model.type == 'DiffIRS2GAN'
        assert model.stage2_checkpoint
        assert model.discriminator == dict(type='UNetDiscriminatorWithSpectralNorm',
                                           in_channels=3, mid_channels=64, skip_connection=True)
        assert model.perceptual_loss.layer_weights == PERCEPTUAL
        assert model.perceptual_loss.perceptual_weight == 1.0
        assert model.perceptual_loss.style_weight == 0.0
        assert model.perceptual_loss.criterion == 'l1' and model.perceptual_loss.use_input_norm
        assert model.gan_loss.gan_type == 'vanilla' and model.gan_loss.loss_weight == 1.0
        tc = model.train_cfg
        assert (tc.l1_gt_usm, tc.percep_gt_usm, tc.gan_gt_usm) == (
            extra['usm'], extra['usm'], False)
        assert tc.encoder_iters == 0 and tc.disc_steps == 1 and tc.disc_init_steps == 0
        d_opt = cfg.optim_wrapper.discriminator.optimizer
        assert (d_opt.lr, tuple(d_opt.betas)) == (sched['d_lr'], ADAM_99)
        d_sched = cfg.param_scheduler.discriminator[0]
        if 'd_milestones' in sched:
            assert d_sched.milestones == sched['d_milestones']
        else:
            assert d_sched.type == 'ConstantLR' and d_sched.factor == 1.0
    if 'progressive' in extra:
        prog = model.train_cfg.progressive
        assert prog.iters == extra['progressive'] and sum(prog.iters) == iters
        assert prog.mini_batch_sizes == PROGRESSIVE['mini_batch_sizes']
        assert prog.gt_sizes == PROGRESSIVE['gt_sizes']
    if extra.get('realsr'):
        _check_realsr_pipeline(cfg, scale, extra.get('usm', False))
