# Real-world SR data at x2 (DiffIR-RealSR x2): realsr_df2k_ost.py with `scale = 2`, evaluated as
# the official x2 / x1 configs do: validation and test on RealSR Canon Test/<scale> only
# (NTIRE2020-Track1 is x4 only). It is also the base of the other factors: mmengine parses a
# base on its own, so a config that inherits this file and sets `scale` must set again the
# entries that hold the scale, the five marked "scale" below (realsr_df2k_ost_x1.py does).
_base_ = ['./realsr_df2k_ost.py']

scale = 2

# scale: the batched degradation reads it from the data preprocessor, the CPU pipelines from
# their SetValues step
realsr_data_preprocessor = dict(_base_.realsr_data_preprocessor, scale=scale)
train_pipeline_cpu, train_pipeline_cpu_usm_source = (
    [dict(step, dictionary=dict(scale=scale)) if step['type'] == 'SetValues' else step
     for step in pipeline]
    for pipeline in (_base_.train_pipeline_cpu, _base_.train_pipeline_cpu_usm_source))

# scale: RealSR Canon Test/<scale>, the only validation and test set
realsr_canon_dataset = dict(
    _base_.realsr_canon_dataset,
    data_prefix=dict(img=f'Canon/Test/{scale}/LR', gt=f'Canon/Test/{scale}/HR'))
# GAN stage (official train_DiffIRS2_GAN_x{2,1}*.yml): RealSR Canon, PSNR-Y crop 4
gan_val_dataloader = [
    dict(_base_.eval_loader_cfg,
         dataset=dict(realsr_canon_dataset, pipeline=_base_.val_pipeline))
]
gan_val_evaluator = _base_.canon_gan_val_evaluator
# stages 1 and 2: the same set, PSNR-Y crop 0 (`_delete_`: replace the x4 set, not merge into it;
# mmengine removes the key while merging this dict into the base's)
val_dataloader = dict(gan_val_dataloader[0],
                      dataset=dict(gan_val_dataloader[0]['dataset'], _delete_=True))
val_evaluator = [
    dict(type='PSNR', crop_border=0, convert_to='Y', prefix='RealSR-Canon'),
]
test_dataloader = [dict(_base_.eval_loader_cfg, dataset=realsr_canon_dataset)]
test_evaluator = [_base_.test_evaluator[0]]
