# Stage-2 schedule of the real-world SR recipes (official DiffIR-RealSR/train_DiffIRS2_x*.yml):
# 1M iterations; warm-up (CPEN_S2 + denoiser) lr 2e-4 * 0.1^(it // 60k) for 100k iterations,
# then joint lr 2e-4 * 0.5^((it - 100k) // 600k); EMA 0.999.
train_cfg = dict(type='IterBasedTrainLoop', max_iters=1000000, val_interval=5000)
encoder_iters = 100000
param_scheduler = dict(
    encoder=[dict(type='MultiStepLR', by_epoch=False, milestones=[60000], gamma=0.1)],
    generator=[dict(type='MultiStepLR', by_epoch=False, milestones=[700000], gamma=0.5)])

ema_hook = dict(type='GeneratorEMAHook', module_keys=('generator_ema', ), interval=1,
                momentum=0.001)
visualization_hook = dict(type='BasicVisualizationHook', interval=1, on_train=False)
custom_hooks = [ema_hook, visualization_hook]
