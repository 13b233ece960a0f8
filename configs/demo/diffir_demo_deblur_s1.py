# Demo, stage 1 (tools/demo.py --task deblur): configs/diffir_deblur_s1.py with a small DiffIR,
# 48 px patches and a few-minute CPU schedule, on scikit-image photos blurred with random motion
# kernels. tools/demo.py writes <out-dir>/deblur/data/{train,test}/{input,target} and points the
# data roots there with --cfg-options; `--quick` shortens train_cfg.max_iters (the schedule below
# is then cut short).
_base_ = ['../diffir_deblur_s1.py', './_base_/demo_common.py']

experiment_name = 'diffir_demo_deblur_s1'
work_dir = f'./work_dirs/{experiment_name}'
max_iters = 1300

# Fixed 48 px patches, 4 per batch, instead of the official progressive 192..512 px schedule.
model = dict(generator=_base_.demo_generator, train_cfg=dict(progressive=None))

train_pipeline = [dict(step, gt_patch_size=48) if step['type'] == 'PairedRandomCrop' else step
                  for step in _base_.train_pipeline]
train_dataloader = dict(
    _base_.demo_train_loader, batch_size=4,
    dataset=dict(data_root='demo_out/deblur/data/train',
                 data_prefix=dict(img='input', gt='target'), pipeline=train_pipeline))

# The held-out photos, scored like GoPro (RGB, no border crop).
test_dataloader = dict(
    _base_.demo_eval_loader, _delete_=True,
    dataset=dict(type='BasicImageDataset', data_root='demo_out/deblur/data/test',
                 data_prefix=dict(img='input', gt='target'), pipeline=_base_.test_pipeline))
test_evaluator = [dict(type='PSNR', crop_border=0, prefix='demo'),
                  dict(type='SSIM', crop_border=0, prefix='demo')]
val_dataloader = None
val_evaluator = None
val_cfg = None

train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
optim_wrapper = dict(optimizer=dict(lr=1e-3))
# Linear warm-up, then cosine decay to 1% of the peak.
param_scheduler = [
    dict(type='LinearLR', by_epoch=False, start_factor=0.01, begin=0, end=50),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=50, end=max_iters, eta_min=1e-5)]
# A short run: the EMA averages the last 40% of it, with a short memory.
custom_hooks = [dict(_base_.custom_hooks[0], momentum=0.02, start_iter=int(0.6 * max_iters))]
default_hooks = _base_.demo_default_hooks
log_processor = _base_.demo_log_processor
visualizer = _base_.demo_visualizer
randomness = dict(seed=2023)
