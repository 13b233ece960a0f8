# DiffIR stage 1, real-world x4 SR on DF2K+OST with the second-order Real-ESRGAN degradation
# (official DiffIR-RealSR/options/train_DiffIRS1_x4.yml). 8 GPUs x 9 images, 1M iterations.
_base_ = [
    './_base_/default_runtime.py',
    './_base_/datasets/realsr_df2k_ost.py',
    './_base_/models/diffir_sr.py',
]

experiment_name = 'diffir_sr_s1'
work_dir = f'./work_dirs/{experiment_name}'
save_dir = './work_dirs/'

train_dataloader = dict(batch_size=9)

train_cfg = dict(type='IterBasedTrainLoop', max_iters=1000000, val_interval=5000)
val_cfg = dict(type='MultiValLoop')
test_cfg = dict(type='MultiTestLoop')

optim_wrapper = dict(
    constructor='DefaultOptimWrapperConstructor',
    type='OptimWrapper',
    optimizer=dict(type='Adam', lr=2e-4, betas=(0.9, 0.99), weight_decay=0))
param_scheduler = dict(
    type='MultiStepLR', by_epoch=False, milestones=[500000, 700000], gamma=0.5)

custom_hooks = [
    dict(type='ExponentialMovingAverageHook', module_keys=('generator_ema', ), interval=1,
         interp_cfg=dict(momentum=0.001)),  # EMA decay 0.999
    dict(type='BasicVisualizationHook', interval=1, on_train=False, on_val=False),
]
default_hooks = dict(
    checkpoint=dict(interval=5000, save_best='NTIRE2020-T1/PSNR', rule='greater'))

auto_scale_lr = dict(enable=False, base_batch_size=72)
