# x2 variant of df2k_bicubic.py (DiffIR-SRGAN x2): only `scale` changes.
# The lines below re-derive everything that depends on it; copy this file
# and edit `scale` for another factor.
_base_ = ['./df2k_bicubic.py']

scale = 2

# the pipelines read the scale from their SetValues step
train_pipeline = _base_.train_pipeline
test_pipeline = _base_.test_pipeline
for _step in train_pipeline + test_pipeline:
    if _step['type'] == 'SetValues':
        _step['dictionary']['scale'] = scale
del _step
val_pipeline = test_pipeline

# LR folders depend on the scale
train_dataloader = dict(
    dataset=dict(
        data_prefix=dict(img=f'LR_bicubic_sub/X{scale}', gt='HR_sub'),
        pipeline=train_pipeline))
benchmark_datasets = {
    name: dict(
        _base_.benchmark_datasets[name],
        data_prefix=dict(img=f'LRbicx{scale}', gt='HR'),
        pipeline=test_pipeline)
    for name in _base_.benchmark_names
}
val_dataloader = [
    dict(_base_.eval_loader_cfg, dataset=benchmark_datasets[name])
    for name in _base_.val_benchmark_names
]
test_dataloader = [
    dict(_base_.eval_loader_cfg, dataset=benchmark_datasets[name])
    for name in _base_.benchmark_names
]

# LPIPS crops the GT to a multiple of the scale
test_evaluator = _base_.test_evaluator
for _evaluator in test_evaluator:
    for _metric in _evaluator['metrics']:
        if _metric['type'] == 'LPIPS':
            _metric['gt_crop_multiple'] = scale
del _evaluator, _metric
