# Stage-1 schedule of the SR recipes (official DiffIR-RealSR / DiffIR-SRGAN train_DiffIRS1_x*.yml):
# Adam 2e-4 (0.9, 0.99), MultiStepLR [500k, 700k] x0.5, 1M iterations, EMA 0.999.
train_cfg = dict(type='IterBasedTrainLoop', max_iters=1000000, val_interval=5000)

optim_wrapper = dict(
    constructor='DefaultOptimWrapperConstructor',
    type='OptimWrapper',
    optimizer=dict(type='Adam', lr=2e-4, betas=(0.9, 0.99), weight_decay=0))
param_scheduler = dict(
    type='MultiStepLR', by_epoch=False, milestones=[500000, 700000], gamma=0.5)

ema_hook = dict(type='GeneratorEMAHook', module_keys=('generator_ema', ), interval=1,
                momentum=0.001)  # EMA decay 0.999
visualization_hook = dict(type='BasicVisualizationHook', interval=1, on_train=False)
custom_hooks = [ema_hook, visualization_hook]
