# DiffIR stage 1, motion deblurring on GoPro
# (official DiffIR-demotionblur/options/train_DiffIRS1.yml).
# 8 GPUs x 8 images (progressive: 8/4/2/2/1/1 per GPU at 192..512 px), 300k iterations.
_base_ = [
    './_base_/default_runtime.py',
    './_base_/datasets/gopro_deblur.py',
    './_base_/models/diffir_deblur.py',
]

experiment_name = 'diffir_deblur_s1'
work_dir = f'./work_dirs/{experiment_name}'
save_dir = './work_dirs/'

model = dict(
    train_cfg=dict(
        # Restormer-style progressive patches: every iteration sub-samples the loader batch
        # (8 x 512^2 per GPU) to mini_batch_sizes[j] images cropped to gt_sizes[j].
        progressive=dict(
            iters=[92000, 80000, 38000, 33000, 33000, 24000],
            mini_batch_sizes=[8, 4, 2, 2, 1, 1],
            gt_sizes=[192, 256, 320, 384, 464, 512])))
# The 464/512 phases start after sum(iters[:4]) iterations. To fit them on smaller GPUs, resume
# there with block checkpointing (it changes no weight, only memory and time):
#   --resume --cfg-options model.generator.with_cp=True

train_dataloader = dict(batch_size=8)

# val_freq / save_checkpoint_freq 5e3 (official train_DiffIRS1.yml)
train_cfg = dict(type='IterBasedTrainLoop', max_iters=300000, val_interval=5000)
val_cfg = dict(type='MultiValLoop')
test_cfg = dict(type='MultiTestLoop')

optim_wrapper = dict(
    constructor='DefaultOptimWrapperConstructor',
    type='OptimWrapper',
    optimizer=dict(type='Adam', lr=2e-4, betas=(0.9, 0.999), weight_decay=0))

# Official CosineAnnealingRestartCyclicLR: cosine 2e-4 -> 2.85e-4 over 92k, then 2e-4 -> 1e-6.
param_scheduler = dict(
    type='CosineRestartCyclicLR',
    by_epoch=False,
    periods=[92000, 208000],
    restart_weights=[1, 1],
    eta_mins=[2.85e-4, 1e-6])

custom_hooks = [
    dict(type='GeneratorEMAHook', module_keys=('generator_ema', ), interval=1,
         momentum=0.001),  # EMA decay 0.999
    dict(type='BasicVisualizationHook', interval=1, on_train=False),
]

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=100),
    checkpoint=dict(interval=5000, save_best='GoPro/PSNR', rule='greater'))

# Linear scaling from the official global batch (8 GPUs x 8) with --auto-scale-lr.
auto_scale_lr = dict(enable=False, base_batch_size=64)
