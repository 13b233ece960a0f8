# Schedule of the own-data fine-tuning recipes (configs/diffir_*_finetune.py, one GPU; see
# docs/user_guides/own_data.md): 20k iterations, validation and a checkpoint every 2k (the best
# one and the last three kept), a linear warm-up of the generator's learning rate and a cosine
# decay to 1e-6. The GAN stages' discriminator is not released: it trains alone for the first
# `finetune_warmup` iterations (the editor's `disc_init_steps`), then the generator warms up.
# The names are prefixed: the recipes also inherit a task config or base.
finetune_iters = 20000
finetune_warmup = 1000
finetune_val_interval = 2000

finetune_train_cfg = dict(
    type='IterBasedTrainLoop', max_iters=finetune_iters, val_interval=finetune_val_interval)


def _generator(begin):
    return [
        dict(type='LinearLR', by_epoch=False, start_factor=0.01, begin=begin,
             end=begin + finetune_warmup),
        dict(type='CosineAnnealingLR', by_epoch=False, begin=begin + finetune_warmup,
             end=finetune_iters, eta_min=1e-6),
    ]


finetune_generator_schedule = _generator(0)
finetune_gan_schedule = dict(
    generator=_generator(finetune_warmup),  # first stepped after the discriminator's warm-up
    discriminator=[dict(type='CosineAnnealingLR', by_epoch=False, begin=0, end=finetune_iters,
                        eta_min=1e-6)])

# EMA 0.999 of the generator: what validation, test and export use (not in the inpainting
# recipes, which have none officially)
finetune_ema_hook = dict(type='GeneratorEMAHook', module_keys=('generator_ema', ), interval=1,
                         momentum=0.001)
finetune_default_hooks = dict(
    logger=dict(interval=100),
    checkpoint=dict(interval=finetune_val_interval, max_keep_ckpts=3, rule='greater'))

# x4 SR of held-out single images (their bicubic downscale): Y channel, 4-pixel border
finetune_sr_evaluator = [dict(type='PSNR', crop_border=4, convert_to='Y', prefix='val'),
                         dict(type='SSIM', crop_border=4, convert_to='Y', prefix='val')]
