# DiffIR stage 1, real-world x2 SR (official DiffIR-RealSR/options/train_DiffIRS1_x2.yml):
# as x4, with scale 2 and no EMA (ema_decay: 0); validation on RealSR Canon Test/2.
_base_ = [
    './_base_/default_runtime.py',
    './_base_/datasets/realsr_df2k_ost_x2.py',
    './_base_/models/diffir_sr.py',
    './_base_/schedules/diffir_sr_s1.py',
]

experiment_name = 'diffir_sr_x2_s1'
work_dir = f'./work_dirs/{experiment_name}'

model = dict(generator=dict(scale=2), is_use_ema=False,
             data_preprocessor=_base_.realsr_data_preprocessor)
custom_hooks = [_base_.visualization_hook]
train_dataloader = dict(batch_size=9)
default_hooks = dict(
    checkpoint=dict(interval=5000, save_best='RealSR-Canon/PSNR', rule='greater'))
auto_scale_lr = dict(enable=False, base_batch_size=72)
