# DiffIR stage 2-GAN, bicubic x4 SISR (official DiffIR-SRGAN/options/train_DiffIRS2_GAN_x4.yml):
# generator lr 2e-4, discriminator 1e-4, MultiStepLR [200k] x0.5, 400k iterations.
#   --cfg-options model.stage2_checkpoint=... model.stage1_checkpoint=... \
#                 model.perceptual_loss.vgg_path=checkpoints/vgg19-dcbb9e9d.pth
_base_ = ['./diffir_sisr_x4_s2.py', './_base_/models/diffir_gan.py']

experiment_name = 'diffir_sisr_x4_s2_gan'
work_dir = f'./work_dirs/{experiment_name}'

model = dict(
    _base_.gan_model,
    stage2_checkpoint='work_dirs/diffir_sisr_x4_s2/iter_1000000.pth',
    stage1_checkpoint='work_dirs/diffir_sisr_x4_s1/iter_1000000.pth')

train_cfg = dict(type='IterBasedTrainLoop', max_iters=400000, val_interval=5000)
optim_wrapper = dict(_base_.gan_optim_wrapper, _delete_=True)
optim_wrapper['generator']['optimizer']['lr'] = 2e-4
param_scheduler = dict(
    _delete_=True,
    generator=[dict(type='MultiStepLR', by_epoch=False, milestones=[200000], gamma=0.5)],
    discriminator=[dict(type='MultiStepLR', by_epoch=False, milestones=[200000], gamma=0.5)])
model_wrapper_cfg = _base_.gan_model_wrapper_cfg
