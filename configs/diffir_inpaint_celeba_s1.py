# DiffIR stage 1, inpainting on CelebA-HQ 256
# (official DiffIR-inpainting/configs/training/DiffIRS1-celeba.yaml, train_celebahqS1.sh).
# 8 GPUs x 4 images, 1M iterations, LaMa losses (masked L1 10, adversarial + R1 10 / 0.001,
# feature matching 100, ResNet-PL 30), NLayer discriminator.
# ResNet-PL weights: model.resnet_pl_loss (see configs/_base_/models/diffir_inpaint_s1.py).
_base_ = [
    './_base_/default_runtime.py',
    './_base_/datasets/celebahq_inpaint.py',
    './_base_/models/diffir_inpaint_s1.py',
    './_base_/schedules/diffir_inpaint.py',
]

experiment_name = 'diffir_inpaint_celeba_s1'
work_dir = f'./work_dirs/{experiment_name}'
save_dir = './work_dirs/'

train_dataloader = dict(batch_size=4)
# any_gpu_large_ssim_ddp_final_celeba.yaml: val_check_interval 2600
train_cfg = dict(val_interval=2600)
default_hooks = dict(
    logger=_base_.logger_hook,
    checkpoint=dict(_base_.checkpoint_hook, save_best='CelebAHQ-val/SSIM'))

# Linear scaling from the official global batch (8 GPUs x 4) with --auto-scale-lr.
auto_scale_lr = dict(enable=False, base_batch_size=32)
