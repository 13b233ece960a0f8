# DiffIR stage 2, inpainting on CelebA-HQ 256
# (official DiffIR-inpainting/configs/training/DiffIRS2-celeba.yaml, train_celebahqS2.sh).
# Joint from step 0: the LaMa losses + L_diff (L1 between the estimated and the frozen stage-1
# IPR). The DIRformer starts from stage 1; needs the stage-1 checkpoint:
#   --cfg-options model.stage1_checkpoint=work_dirs/diffir_inpaint_celeba_s1/iter_1000000.pth
_base_ = [
    './_base_/default_runtime.py',
    './_base_/datasets/celebahq_inpaint.py',
    './_base_/models/diffir_inpaint_s2.py',
    './_base_/schedules/diffir_inpaint.py',
]

experiment_name = 'diffir_inpaint_celeba_s2'
work_dir = f'./work_dirs/{experiment_name}'
save_dir = './work_dirs/'

model = dict(stage1_checkpoint='work_dirs/diffir_inpaint_celeba_s1/iter_1000000.pth')

train_dataloader = dict(batch_size=4)
train_cfg = dict(val_interval=2600)  # any_gpu_large_ssim_ddp_final_celebaS.yaml
default_hooks = dict(
    logger=_base_.logger_hook,
    checkpoint=dict(_base_.checkpoint_hook, save_best='CelebAHQ-val/SSIM'))

auto_scale_lr = dict(enable=False, base_batch_size=32)
