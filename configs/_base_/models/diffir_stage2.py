# What stage 2 changes on top of a stage-1 model (identical in every released DiffIR model).
# Used as `model = dict(_base_.stage2_model, ...)` and
# `optim_wrapper = _base_.stage2_optim_wrapper`.
stage2_model = dict(
    type='DiffIRS2',
    generator=dict(
        type='DiffIRS2Net', n_denoise_res=1, timesteps=4, linear_start=0.1, linear_end=0.99),
    # L_diff: L1 between estimated and teacher IPR (official KDLoss.l_abs); its KL is only logged
    prior_loss=dict(type='L1Loss', loss_weight=1.0, reduction='mean'),
    kd_tau=0.15)

# 'encoder' (CPEN_S2 + denoiser) during the warm-up, 'generator' (everything) afterwards.
stage2_optim_wrapper = dict(
    constructor='MultiOptimWrapperConstructor',
    generator=dict(
        type='OptimWrapper', modules='generator',
        optimizer=dict(type='Adam', lr=2e-4, betas=(0.9, 0.99), weight_decay=0)),
    encoder=dict(
        type='OptimWrapper',
        modules=[r'generator(\.module)?\.cpen', r'generator(\.module)?\.denoiser'],
        optimizer=dict(type='Adam', lr=2e-4, betas=(0.9, 0.99), weight_decay=0)))

# train_step calls the generator and the teacher separately; the DIRformer idles in the warm-up.
stage2_model_wrapper_cfg = dict(
    type='MMSeparateDistributedDataParallel', find_unused_parameters=True)
