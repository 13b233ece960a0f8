# DiffIR stage 2-GAN "V2" fine-tuning, real-world SR (official finetune_DiffIRS2_GAN_x1_V2.yml):
# the V2 recipe started from the trained V1 GAN model, generator AND discriminator
# (official pretrain_network_g + pretrain_network_d, param_key_d: params, strict_load_d: true).
#   --cfg-options model.stage2_checkpoint=work_dirs/diffir_sr_x1_s2_gan/iter_400000.pth \
#                 model.discriminator_checkpoint=work_dirs/diffir_sr_x1_s2_gan/iter_400000.pth \
#                 model.stage1_checkpoint=work_dirs/diffir_sr_x1_s1/iter_1000000.pth
# An official net_d_*.pth also works as discriminator_checkpoint.
_base_ = ['./diffir_sr_x1_s2_gan_v2.py']

experiment_name = 'diffir_sr_x1_s2_gan_v2_finetune'
work_dir = f'./work_dirs/{experiment_name}'

model = dict(
    stage2_checkpoint='work_dirs/diffir_sr_x1_s2_gan/iter_400000.pth',
    discriminator_checkpoint='work_dirs/diffir_sr_x1_s2_gan/iter_400000.pth')
