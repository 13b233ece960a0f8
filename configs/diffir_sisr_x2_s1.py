# DiffIR stage 1, bicubic x2 SISR on paired DF2K
# (official DiffIR-SRGAN/options/train_DiffIRS1_x2.yml).
# No degradation synthesis; 8 GPUs x 8 images, 1M iterations.
_base_ = [
    './_base_/default_runtime.py',
    './_base_/datasets/df2k_bicubic_x2.py',
    './_base_/models/diffir_sr.py',
    './_base_/schedules/diffir_sr_s1.py',
]

experiment_name = 'diffir_sisr_x2_s1'
work_dir = f'./work_dirs/{experiment_name}'

model = dict(generator=dict(scale=2))
train_dataloader = dict(batch_size=8)
default_hooks = dict(checkpoint=dict(interval=5000, save_best='Urban100/PSNR', rule='greater'))
auto_scale_lr = dict(enable=False, base_batch_size=64)
