# DiffIR stage 2, real-world x4 SR (official DiffIR-RealSR/options/train_DiffIRS2_x4.yml).
# 100k warm-up iterations of CPEN_S2 + denoiser, then joint training, 1M iterations in all.
# Set the stage-1 checkpoint: --cfg-options model.stage1_checkpoint=work_dirs/diffir_sr_s1/iter_1000000.pth
_base_ = ['./diffir_sr_s1.py']

experiment_name = 'diffir_sr_s2'
work_dir = f'./work_dirs/{experiment_name}'

model = dict(
    type='DiffIRS2',
    generator=dict(
        type='DiffIRS2Net', n_denoise_res=1, timesteps=4, linear_start=0.1, linear_end=0.99),
    # L_diff: L1 between estimated and teacher IPR (official KDLoss.l_abs); its KL is only logged
    prior_loss=dict(type='L1Loss', loss_weight=1.0, reduction='mean'),
    kd_tau=0.15,
    stage1_checkpoint='work_dirs/diffir_sr_s1/iter_1000000.pth',
    train_cfg=dict(encoder_iters=100000))

train_cfg = dict(type='IterBasedTrainLoop', max_iters=1000000, val_interval=5000)

# 'encoder' (CPEN_S2 + denoiser) during the warm-up, 'generator' (everything) afterwards.
optim_wrapper = dict(
    _delete_=True,
    constructor='MultiOptimWrapperConstructor',
    generator=dict(
        type='OptimWrapper', modules='generator',
        optimizer=dict(type='Adam', lr=2e-4, betas=(0.9, 0.99), weight_decay=0)),
    encoder=dict(
        type='OptimWrapper',
        modules=[r'generator(\.module)?\.cpen', r'generator(\.module)?\.denoiser'],
        optimizer=dict(type='Adam', lr=2e-4, betas=(0.9, 0.99), weight_decay=0)))

# Official manual rules: warm-up 2e-4 * 0.1^(it // 60k); joint 2e-4 * 0.5^((it - 100k) // 600k).
param_scheduler = dict(
    _delete_=True,
    encoder=[dict(type='MultiStepLR', by_epoch=False, milestones=[60000], gamma=0.1)],
    generator=[dict(type='MultiStepLR', by_epoch=False, milestones=[700000], gamma=0.5)])

model_wrapper_cfg = dict(type='MMSeparateDistributedDataParallel', find_unused_parameters=True)
