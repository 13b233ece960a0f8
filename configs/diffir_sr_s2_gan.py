# DiffIR stage 2-GAN "V1" (fidelity), real-world x4 SR (official train_DiffIRS2_GAN_x4.yml).
# Starts from the stage-2 model; the stage-1 network stays the frozen teacher. 400k iterations.
#   --cfg-options model.stage2_checkpoint=work_dirs/diffir_sr_s2/iter_1000000.pth \
#                 model.stage1_checkpoint=work_dirs/diffir_sr_s1/iter_1000000.pth \
#                 model.perceptual_loss.vgg_path=checkpoints/vgg19-dcbb9e9d.pth
_base_ = ['./diffir_sr_s2.py', './_base_/models/diffir_gan.py']

experiment_name = 'diffir_sr_s2_gan'
work_dir = f'./work_dirs/{experiment_name}'

model = dict(
    _base_.gan_model,
    stage2_checkpoint='work_dirs/diffir_sr_s2/iter_1000000.pth',
    stage1_checkpoint='work_dirs/diffir_sr_s1/iter_1000000.pth')

train_cfg = dict(type='IterBasedTrainLoop', max_iters=400000, val_interval=10000)
optim_wrapper = dict(_base_.gan_optim_wrapper, _delete_=True)
# Official: generator lr 1e-4 * 0.5^(it // 300k); discriminator constant.
param_scheduler = dict(
    _delete_=True,
    generator=[dict(type='MultiStepLR', by_epoch=False, milestones=[300000], gamma=0.5)],
    discriminator=[dict(type='ConstantLR', by_epoch=False, factor=1.0)])
model_wrapper_cfg = _base_.gan_model_wrapper_cfg

# Validation as official: NTIRE2020-T1, AIM2019-T2, RealSR-Canon Test/4, PSNR-Y and SSIM-Y crop 4;
# val_freq / save_checkpoint_freq 1e4 (train_DiffIRS2_GAN_x4.yml).
val_dataloader = _base_.gan_val_dataloader
val_evaluator = _base_.gan_val_evaluator
default_hooks = dict(
    checkpoint=dict(interval=10000, save_best='NTIRE2020-T1/PSNR', rule='greater'))
