# Stage-1 runtime of the demo configs (tools/demo.py), shared by every task: a few-minute CPU run
# of a small DiffIR, no validation (tools/test.py evaluates), one checkpoint at the end.
_base_ = ['../../_base_/default_runtime.py']

# 16 channels and one block per level instead of 48-64 channels and up to 13 blocks.
demo_generator = dict(dim=16, num_blocks=[1, 1, 1, 1], num_refinement_blocks=1,
                      heads=[1, 2, 4, 8], ffn_expansion_factor=2.0, n_encoder_res=1)

max_iters = 1200
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
optim_wrapper = dict(
    constructor='DefaultOptimWrapperConstructor',
    type='OptimWrapper',
    optimizer=dict(type='Adam', lr=1e-3, betas=(0.9, 0.99), weight_decay=0))
# Linear warm-up, then cosine decay to 1% of the peak (`--quick` stops early in the warm-up).
param_scheduler = [
    dict(type='LinearLR', by_epoch=False, start_factor=0.01, begin=0, end=50),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=50, end=max_iters, eta_min=1e-5)]
# A short run: the EMA averages the last 40% of it, with a short memory.
custom_hooks = [dict(type='GeneratorEMAHook', module_keys=('generator_ema', ), interval=1,
                     momentum=0.02, start_iter=int(0.6 * max_iters))]
# save_last writes iter_<max_iters>.pth; nothing is validated, so no best checkpoint.
default_hooks = dict(
    logger=dict(interval=25),
    checkpoint=dict(interval=max_iters, save_best=None, max_keep_ckpts=1, save_optimizer=False))
log_processor = dict(window_size=25)
visualizer = dict(vis_backends=[dict(type='LocalVisBackend')])
randomness = dict(seed=2023)
