# Schedule of the DiffIR-inpainting recipes, stage 1 and stage 2 (LaMa trainer
# configs/training/trainer/any_gpu_large_ssim_ddp_final*.yaml): 40 epochs of 25,000 batches =
# 1M iterations, fp32, gradient clipping 1 (optimizers in the model bases: Adam G 2e-4 / D 1e-4,
# constant learning rates, gradients clipped to norm 1), no EMA (none in the official trainers),
# a log line every 250 iterations and a checkpoint every epoch (25,000 iterations).
# Validation: every 25,000 iterations (Places) or 2,600 (CelebA-HQ:
# any_gpu_large_ssim_ddp_final_celeba*.yaml); the top-level configs set `val_interval`.
train_cfg = dict(type='IterBasedTrainLoop', max_iters=1000000, val_interval=25000)

# Official: save_top_k 5 on LaMa's val_ssim_fid100_f1 plus last.ckpt. MMagic keeps one best
# checkpoint per metric; the top-level configs name their validation SSIM (`save_best`).
checkpoint_hook = dict(
    type='AtomicCheckpointHook',
    by_epoch=False,
    interval=25000,
    max_keep_ckpts=5,
    save_last=True,
    save_optimizer=True,
    rule='greater')
logger_hook = dict(type='LoggerHook', interval=250)
visualization_hook = dict(type='BasicVisualizationHook', interval=1, on_train=False)
custom_hooks = [visualization_hook]
