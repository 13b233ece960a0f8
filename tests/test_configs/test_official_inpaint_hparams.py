"""The inpainting recipe configs against the official DiffIR-inpainting hyper-parameters.

Values transcribed from the official LaMa-style YAMLs (``DiffIR-inpainting/configs/training/
{DiffIRS1,DiffIRS2}-{celeba,place2}.yaml``, ``DiffIRbigdataS{1,2}-place2.yaml`` and their
``generator/``, ``data/``, ``trainer/``, ``optimizers/`` parts; ``train_*.sh`` for the batch) and
LaMa's ``get_transforms('distortions')`` (albumentations 0.5.2 / imgaug defaults); see
``docs/advanced_guides/method.md`` §2.5, §4.5 and §5. Only mmengine's ``Config`` is needed.
"""
from pathlib import Path

import pytest
from mmengine import Config

CONFIGS = Path(__file__).resolve().parents[2] / 'configs'

ARCH = dict(dim=52, num_blocks=[1, 1, 1, 9], num_refinement_blocks=0, heads=[1, 2, 4, 8],
            ffn_expansion_factor=1.8, bias=False, LayerNorm_type='WithBias', n_encoder_res=5)
BIG = dict(num_blocks=[1, 1, 1, 20], n_encoder_res=8)
DIFFUSION = dict(n_denoise_res=1, timesteps=4, linear_start=0.1, linear_end=0.99)
# 40 epochs x limit_train_batches 25000; checkpoints once per epoch
ITERS, EPOCH = 1000000, 25000
# (dataset, stage, big, batch per GPU, validation interval)
TABLE = {
    'diffir_inpaint_celeba_s1': ('celeba', 1, False, 4, 2600),
    'diffir_inpaint_celeba_s2': ('celeba', 2, False, 4, 2600),
    'diffir_inpaint_places_s1': ('places', 1, False, 4, 25000),
    'diffir_inpaint_places_s2': ('places', 2, False, 4, 25000),
    'diffir_inpaint_big_places_s1': ('places', 1, True, 15, 25000),
    'diffir_inpaint_big_places_s2': ('places', 2, True, 15, 25000),
}
# abl-04-256-mh-dist[-celeba].yaml: the training masks of both datasets
TRAIN_MASKS = 'train'
# LaMa protocol: CelebA-HQ thin/thick at 256, Places thin/thick at 512
EVAL_MASKS = {'celeba': ('thin_256', 'thick_256'), 'places': ('thin_512', 'thick_512')}
EVAL_MASK_STEP = {'celeba': 'GenerateInpaintingMask', 'places': 'LamaEvalSample'}
EVAL_DATASET = {'celeba': 'BasicImageDataset', 'places': 'LamaEvalDataset'}
# Places: the number of images evaluated and left out (LaMa's evaluation sets lack them)
EVAL_COUNTS = {'celeba': set(), 'places': {'ImageCount'}}
# get_transforms('distortions', 256) with the albumentations 0.5.2 / imgaug 0.4 defaults
PLACES_AUGS = [
    ('Perspective', dict(scale=(0.0, 0.06), keep_size=True, p=0.5)),
    ('Affine', dict(scale=(0.7, 1.3), rotate=(-40, 40), shear=(-0.1, 0.1), p=0.5)),
    ('PadIfNeeded', dict(min_height=256, min_width=256)),
    ('LamaOpticalDistortion', dict(distort_limit=0.05, p=0.5)),
    ('RandomCrop', dict(height=256, width=256)),
    ('HorizontalFlip', dict(p=0.5)),
    ('CLAHE', dict(clip_limit=4.0, tile_grid_size=(8, 8), p=0.5)),
    ('RandomBrightnessContrast', dict(brightness_limit=0.2, contrast_limit=0.2, p=0.5)),
    ('HueSaturationValue', dict(hue_shift_limit=5, sat_shift_limit=30, val_shift_limit=5,
                                p=0.5)),
]
BORDERS = {'Perspective': 1, 'Affine': 4, 'PadIfNeeded': 4}  # replicate; imgaug 'reflect'


def test_every_inpainting_config_is_in_the_table():
    names = {p.stem for p in CONFIGS.glob('diffir_inpaint_*.py')}
    assert names == set(TABLE), f'untabled: {names - set(TABLE)}; missing: {set(TABLE) - names}'


def _types(pipeline):
    return [step['type'] for step in pipeline]


def _mask_presets(pipeline, step='GenerateInpaintingMask'):
    return [s['preset'] for s in pipeline if s['type'] == step]


@pytest.mark.parametrize('name', sorted(TABLE))
def test_inpaint_config_matches_official(name):
    data, stage, big, batch, val_interval = TABLE[name]
    cfg = Config.fromfile(str(CONFIGS / f'{name}.py'))
    model, gen = cfg.model, dict(cfg.model.generator)
    arch = dict(ARCH, **BIG) if big else ARCH
    for key, value in arch.items():
        assert gen[key] == value, f'{name}: generator.{key}={gen[key]!r}, official {value!r}'
    assert gen['task'] == 'inpaint' and gen['inp_channels'] == 4
    assert model.type == f'DiffIRInpaintS{stage}'
    assert gen['type'] == f'DiffIRS{stage}Net'

    # losses (DiffIRS{1,2}-*.yaml `losses`)
    assert model.masked_l1_loss.weight_known == 10 and model.masked_l1_loss.weight_missing == 0
    adv = model.adversarial_loss
    assert (adv.loss_weight, adv.gp_coef, adv.mask_as_fake_target) == (10, 0.001, True)
    assert model.feature_matching_loss.loss_weight == 100
    assert model.resnet_pl_loss.loss_weight == 30
    # losses.resnet_pl of DiffIRS{1,2}-*.yaml trained by trainer/any_gpu_large_ssim_ddp_finalS
    # (pytorch-lightning 1.2.9, requirements.txt): model.train() puts the ResNetPL encoder in
    # train mode, so its BatchNorm used batch statistics
    assert model.resnet_pl_loss.norm_eval is False
    assert 'perceptual_loss' not in model or not model.perceptual_loss  # VGG weight 0
    disc = model.discriminator  # pix2pixhd_nlayer.yaml
    assert (disc.type, disc.in_channels, disc.ndf, disc.n_layers) == (
        'NLayerPatchDiscriminator', 3, 64, 4)
    if stage == 2:
        for key, value in DIFFUSION.items():
            assert gen[key] == value
        assert model.prior_loss.type == 'L1Loss' and model.prior_loss.loss_weight == 1.0
        assert model.kd_tau == 0.15
        assert model.stage1_checkpoint
        assert ('big' in model.stage1_checkpoint) is big

    # optimisation (optimizers/default_optimizers.yaml, trainer/*.yaml)
    opt = cfg.optim_wrapper
    assert opt.constructor == 'MultiOptimWrapperConstructor'
    for part, lr in (('generator', 2e-4), ('discriminator', 1e-4)):
        assert opt[part].optimizer.type == 'Adam' and opt[part].optimizer.lr == lr
        assert tuple(opt[part].optimizer.get('betas', (0.9, 0.999))) == (0.9, 0.999)
        assert opt[part].clip_grad == dict(max_norm=1)
        assert opt[part].get('type', 'OptimWrapper') == 'OptimWrapper'  # fp32
    assert not cfg.get('param_scheduler')  # constant learning rates
    assert 'GeneratorEMAHook' not in [h['type'] for h in cfg.get('custom_hooks', [])]
    assert cfg.train_cfg.max_iters == ITERS and cfg.train_cfg.val_interval == val_interval
    assert cfg.default_hooks.checkpoint.interval == EPOCH
    assert cfg.default_hooks.checkpoint.save_best.endswith('-val/SSIM')
    assert cfg.train_dataloader.batch_size == batch
    assert cfg.auto_scale_lr.base_batch_size == 8 * batch
    dp = model.data_preprocessor
    assert dp.mean == [0.] * 3 and dp.std == [255.] * 3 and dp.output_channel_order == 'RGB'

    # data
    train = cfg.train_dataloader.dataset.pipeline
    assert _mask_presets(train) == [TRAIN_MASKS]
    masked = [s for s in train if s['type'] == 'GetMaskedImage'][0]
    assert masked['zero_value'] == 0
    if data == 'celeba':
        assert _types(train) == ['LoadImageFromFile', 'GenerateInpaintingMask',
                                 'GetMaskedImage', 'PackInputs']  # no_augs, no crop
    else:
        albu = [s for s in train if s['type'] == 'SeededAlbumentations']
        assert len(albu) == 1 and _types(train).index('SeededAlbumentations') < _types(
            train).index('GenerateInpaintingMask')  # LaMa masks the augmented crop
        augs = albu[0]['transforms']
        assert [t['type'] for t in augs] == [t for t, _ in PLACES_AUGS]
        for step, (_, values) in zip(augs, PLACES_AUGS):
            for key, value in values.items():
                assert step[key] == value, f'{step["type"]}.{key}'
            if step['type'] in BORDERS:
                assert step['border_mode'] == BORDERS[step['type']]
    tests = [d.dataset.pipeline for d in cfg.test_dataloader]
    # CelebA-HQ: square 256 images, the mask drawn on the image; Places: LaMa's
    # bin/gen_mask_dataset.py sample (mask on the whole 512-short-side image, square crop),
    # images without one left out by the dataset
    step = EVAL_MASK_STEP[data]
    assert [_mask_presets(p, step) for p in tests] == [[m] for m in EVAL_MASKS[data]]
    for loader, pipeline in zip(cfg.test_dataloader, tests):
        seeded = [s for s in pipeline if s['type'] == step]
        assert isinstance(seeded[0]['seed'], int)  # the same masks in every run
        assert loader.dataset.type == EVAL_DATASET[data]
    for evaluator in cfg.test_evaluator:
        metrics = {m['type']: m for m in evaluator['metrics']}
        assert set(metrics) == {'PairedFID', 'LPIPS', 'SSIM'} | EVAL_COUNTS[data]
        assert metrics['LPIPS']['net'] == 'vgg' and metrics['SSIM']['crop_border'] == 0
        assert metrics['PairedFID']['inception_path'] and metrics['LPIPS']['backbone_path']
