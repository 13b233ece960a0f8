# DiffIR stage 2, inpainting on Places2-Standard (256 crops; evaluated at 512)
# (official DiffIR-inpainting/configs/training/DiffIRS2-place2.yaml, train_place256S2.sh).
# Joint from step 0: the LaMa losses + L_diff (L1 between the estimated and the frozen stage-1
# IPR). The DIRformer starts from stage 1; needs the stage-1 checkpoint:
#   --cfg-options model.stage1_checkpoint=work_dirs/diffir_inpaint_places_s1/iter_1000000.pth
_base_ = [
    './_base_/default_runtime.py',
    './_base_/datasets/places_inpaint.py',
    './_base_/models/diffir_inpaint_s2.py',
    './_base_/schedules/diffir_inpaint.py',
]

experiment_name = 'diffir_inpaint_places_s2'
work_dir = f'./work_dirs/{experiment_name}'
save_dir = './work_dirs/'

model = dict(stage1_checkpoint='work_dirs/diffir_inpaint_places_s1/iter_1000000.pth')

train_dataloader = dict(batch_size=4)
train_cfg = dict(val_interval=25000)  # val_check_interval = limit_train_batches
default_hooks = dict(
    logger=_base_.logger_hook,
    checkpoint=dict(_base_.checkpoint_hook, save_best='Places-val/SSIM'))

auto_scale_lr = dict(enable=False, base_batch_size=32)
