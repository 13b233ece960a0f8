# Real-world SR data at x1 (DiffIR-RealSR x1): realsr_df2k_ost_x2.py with `scale = 1`. Only the
# entries that hold the scale are set again; dicts merge into the x2 ones.
_base_ = ['./realsr_df2k_ost_x2.py']

scale = 1

realsr_data_preprocessor = dict(scale=scale)
train_pipeline_cpu, train_pipeline_cpu_usm_source = (
    [dict(step, dictionary=dict(scale=scale)) if step['type'] == 'SetValues' else step
     for step in pipeline]
    for pipeline in (_base_.train_pipeline_cpu, _base_.train_pipeline_cpu_usm_source))
realsr_canon_dataset = dict(
    data_prefix=dict(img=f'Canon/Test/{scale}/LR', gt=f'Canon/Test/{scale}/HR'))
val_dataloader = dict(dataset=dict(data_prefix=realsr_canon_dataset['data_prefix']))
gan_val_dataloader = [
    dict(_base_.gan_val_dataloader[0],
         dataset=dict(_base_.gan_val_dataloader[0].dataset, **realsr_canon_dataset))
]
test_dataloader = [
    dict(_base_.test_dataloader[0],
         dataset=dict(_base_.realsr_canon_dataset, **realsr_canon_dataset))
]
