# DiffIR stage 1, real-world x4 SR on DF2K+OST with the second-order Real-ESRGAN degradation
# (official DiffIR-RealSR/options/train_DiffIRS1_x4.yml). 8 GPUs x 9 images, 1M iterations.
_base_ = [
    './_base_/default_runtime.py',
    './_base_/datasets/realsr_df2k_ost.py',
    './_base_/models/diffir_sr.py',
    './_base_/schedules/diffir_sr_s1.py',
]

experiment_name = 'diffir_sr_s1'
work_dir = f'./work_dirs/{experiment_name}'

model = dict(data_preprocessor=_base_.realsr_data_preprocessor)  # batched degradation
train_dataloader = dict(batch_size=9)
default_hooks = dict(
    checkpoint=dict(interval=5000, save_best='NTIRE2020-T1/PSNR', rule='greater'))
auto_scale_lr = dict(enable=False, base_batch_size=72)
