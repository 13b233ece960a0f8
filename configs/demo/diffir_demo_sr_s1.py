# Demo, stage 1 (tools/demo.py --task sr): configs/diffir_sisr_x4_s1.py with a small DiffIR,
# 64 px patches and a few-minute CPU schedule, on bicubic x4 pairs cut from scikit-image photos.
# tools/demo.py writes <out-dir>/sr/data/{train,test}/{input,target} and points the data roots
# there with --cfg-options; `--quick` shortens train_cfg.max_iters (the schedule below is cut).
_base_ = ['../diffir_sisr_x4_s1.py', './_base_/demo_common.py']

experiment_name = 'diffir_demo_sr_s1'
work_dir = f'./work_dirs/{experiment_name}'
max_iters = 1200

model = dict(generator=_base_.demo_generator)

train_pipeline = [dict(step, gt_patch_size=64) if step['type'] == 'PairedRandomCrop' else step
                  for step in _base_.train_pipeline]
train_dataloader = dict(
    _base_.demo_train_loader,
    dataset=dict(data_root='demo_out/sr/data/train', ann_file='',
                 data_prefix=dict(img='input', gt='target'), pipeline=train_pipeline))

# The held-out photos, scored like the SISR benchmarks (Y channel, 4-pixel border); no LPIPS
# (its AlexNet weights are a separate local file).
test_dataloader = dict(
    _base_.demo_eval_loader, _delete_=True,
    dataset=dict(type='BasicImageDataset', data_root='demo_out/sr/data/test',
                 data_prefix=dict(img='input', gt='target'), pipeline=_base_.test_pipeline))
test_evaluator = [dict(type='PSNR', crop_border=4, convert_to='Y', prefix='demo'),
                  dict(type='SSIM', crop_border=4, convert_to='Y', prefix='demo')]
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
