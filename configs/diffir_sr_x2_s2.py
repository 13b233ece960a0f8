# DiffIR stage 2, real-world x2 SR (official DiffIR-RealSR/options/train_DiffIRS2_x2.yml).
# Needs the stage-1 checkpoint:
#   --cfg-options model.stage1_checkpoint=work_dirs/diffir_sr_x2_s1/iter_1000000.pth
_base_ = [
    './_base_/default_runtime.py',
    './_base_/datasets/realsr_df2k_ost_x2.py',
    './_base_/models/diffir_sr.py',
    './_base_/models/diffir_stage2.py',
    './_base_/schedules/diffir_sr_s2.py',
]

experiment_name = 'diffir_sr_x2_s2'
work_dir = f'./work_dirs/{experiment_name}'

model = dict(
    _base_.stage2_model,
    generator=dict(_base_.stage2_model.generator, scale=2),
    stage1_checkpoint='work_dirs/diffir_sr_x2_s1/iter_1000000.pth',
    train_cfg=dict(encoder_iters=_base_.encoder_iters),
    data_preprocessor=_base_.realsr_data_preprocessor)  # batched degradation
optim_wrapper = _base_.stage2_optim_wrapper
model_wrapper_cfg = _base_.stage2_model_wrapper_cfg

train_dataloader = dict(batch_size=9)
default_hooks = dict(checkpoint=dict(interval=5000, save_best='RealSR-Canon/PSNR', rule='greater'))
auto_scale_lr = dict(enable=False, base_batch_size=72)
