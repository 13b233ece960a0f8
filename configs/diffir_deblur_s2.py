# DiffIR stage 2, motion deblurring on GoPro (official DiffIR-demotionblur/options/train_DiffIRS2.yml).
# Set the stage-1 checkpoint: --cfg-options model.stage1_checkpoint=work_dirs/diffir_deblur_s1/iter_300000.pth
_base_ = ['./diffir_deblur_s1.py']

experiment_name = 'diffir_deblur_s2'
work_dir = f'./work_dirs/{experiment_name}'

model = dict(
    type='DiffIRS2',
    generator=dict(
        type='DiffIRS2Net', n_denoise_res=1, timesteps=4, linear_start=0.1, linear_end=0.99),
    # L_diff: L1 between estimated and teacher IPR (official KDLoss.l_abs); its KL is only logged
    prior_loss=dict(type='L1Loss', loss_weight=1.0, reduction='mean'),
    kd_tau=0.15,
    stage1_checkpoint='work_dirs/diffir_deblur_s1/iter_300000.pth',
    train_cfg=dict(
        encoder_iters=100000,  # CPEN_S2 + denoiser only, IPR loss only
        progressive=dict(
            iters=[150000, 60000, 50000, 60000, 40000, 40000],
            mini_batch_sizes=[8, 4, 2, 2, 1, 1],
            gt_sizes=[192, 256, 320, 384, 464, 512])))

train_cfg = dict(type='IterBasedTrainLoop', max_iters=400000, val_interval=4000)

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

# Official manual rules: warm-up 2e-4 * 0.1^(it // 60k); joint 2e-4 * 0.5^((it - 100k) // 80k).
param_scheduler = dict(
    _delete_=True,
    encoder=[dict(type='MultiStepLR', by_epoch=False, milestones=[60000], gamma=0.1)],
    generator=[dict(type='MultiStepLR', by_epoch=False, milestones=[180000, 260000, 340000],
                    gamma=0.5)])

# train_step calls the generator and the teacher separately; the DIRformer idles in the warm-up.
model_wrapper_cfg = dict(type='MMSeparateDistributedDataParallel', find_unused_parameters=True)
