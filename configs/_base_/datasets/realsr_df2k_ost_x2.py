# x2 variant of realsr_df2k_ost.py (DiffIR-RealSR x2): only `scale` changes.
# The lines below re-derive everything that depends on it; realsr_x1 uses
# the same lines with scale = 1. Like the official x2/x1 configs, validation
# and test use RealSR Canon Test/<scale> (NTIRE2020-Track1 is x4 only).
_base_ = ['./realsr_df2k_ost.py']

scale = 2

# the batched degradation reads the scale from the data preprocessor, the CPU
# pipelines from their SetValues step
realsr_data_preprocessor = dict(_base_.realsr_data_preprocessor, scale=scale)
train_pipeline_cpu = _base_.train_pipeline_cpu
train_pipeline_cpu_usm_source = _base_.train_pipeline_cpu_usm_source
for _step in train_pipeline_cpu + train_pipeline_cpu_usm_source:
    if _step['type'] == 'SetValues':
        _step['dictionary']['scale'] = scale
del _step

# RealSR Canon Test/<scale>
realsr_canon_dataset = dict(
    _base_.realsr_canon_dataset,
    data_prefix=dict(
        img=f'Canon/Test/{scale}/LR', gt=f'Canon/Test/{scale}/HR'))
val_dataloader = dict(
    _base_.eval_loader_cfg,
    dataset=dict(
        realsr_canon_dataset, pipeline=_base_.val_pipeline, _delete_=True))
val_evaluator = [
    dict(type='PSNR', crop_border=0, convert_to='Y', prefix='RealSR-Canon'),
]
# GAN stage (official train_DiffIRS2_GAN_x2*.yml): RealSR Canon, PSNR-Y crop 4
gan_val_dataloader = [val_dataloader]
gan_val_evaluator = _base_.canon_gan_val_evaluator
test_dataloader = [dict(_base_.eval_loader_cfg, dataset=realsr_canon_dataset)]
test_evaluator = [_base_.test_evaluator[0]]
