# DiffIR stage 2, real-world x4 SR (official DiffIR-RealSR/options/train_DiffIRS2_x4.yml).
# Needs the stage-1 checkpoint:
#   --cfg-options model.stage1_checkpoint=work_dirs/diffir_sr_s1/iter_1000000.pth
_base_ = [
    './_base_/default_runtime.py',
    './_base_/datasets/realsr_df2k_ost.py',
    './_base_/models/diffir_sr.py',
    './_base_/models/diffir_stage2.py',
    './_base_/schedules/diffir_sr_s2.py',
]

experiment_name = 'diffir_sr_s2'
work_dir = f'./work_dirs/{experiment_name}'

model = dict(
    _base_.stage2_model,
    generator=dict(_base_.stage2_model.generator, scale=4),
    stage1_checkpoint='work_dirs/diffir_sr_s1/iter_1000000.pth',
    train_cfg=dict(encoder_iters=_base_.encoder_iters),
    data_preprocessor=_base_.realsr_data_preprocessor)  # batched degradation
optim_wrapper = _base_.stage2_optim_wrapper
model_wrapper_cfg = _base_.stage2_model_wrapper_cfg

train_dataloader = dict(batch_size=9)
# val_freq / save_checkpoint_freq 1e4 (official train_DiffIRS2_x4.yml; x2/x1 keep 5e3)
train_cfg = dict(val_interval=10000)
default_hooks = dict(
    checkpoint=dict(interval=10000, save_best='NTIRE2020-T1/PSNR', rule='greater'))
auto_scale_lr = dict(enable=False, base_batch_size=72)
