# DiffIR stage 1, inpainting on Places2-Standard (256 crops; evaluated at 512)
# (official DiffIR-inpainting/configs/training/DiffIRS1-place2.yaml, train_place256S1.sh).
# 8 GPUs x 4 images, 1M iterations, LaMa losses (masked L1 10, adversarial + R1 10 / 0.001,
# feature matching 100, ResNet-PL 30), NLayer discriminator.
# ResNet-PL weights: model.resnet_pl_loss (see configs/_base_/models/diffir_inpaint_s1.py).
_base_ = [
    './_base_/default_runtime.py',
    './_base_/datasets/places_inpaint.py',
    './_base_/models/diffir_inpaint_s1.py',
    './_base_/schedules/diffir_inpaint.py',
]

experiment_name = 'diffir_inpaint_places_s1'
work_dir = f'./work_dirs/{experiment_name}'
save_dir = './work_dirs/'

train_dataloader = dict(batch_size=4)
train_cfg = dict(val_interval=25000)  # val_check_interval = limit_train_batches
default_hooks = dict(
    logger=_base_.logger_hook,
    checkpoint=dict(_base_.checkpoint_hook, save_best='Places-val/SSIM'))

# Linear scaling from the official global batch (8 GPUs x 4) with --auto-scale-lr.
auto_scale_lr = dict(enable=False, base_batch_size=32)
