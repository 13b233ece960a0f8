# DiffIR stage 2-GAN "V2" (perceptual quality, better denoising), real-world x4 SR
# (official train_DiffIRS2_GAN_x4_V2.yml): the USM-sharpened GT is the L1 and perceptual
# target, the teacher's input and the source of the degradation pipeline.
_base_ = ['./diffir_sr_s2_gan.py']

experiment_name = 'diffir_sr_s2_gan_v2'
work_dir = f'./work_dirs/{experiment_name}'

model = dict(train_cfg=dict(l1_gt_usm=True, percep_gt_usm=True, gan_gt_usm=False),
             data_preprocessor=dict(degrade_unsharp_gt=True))
# CPU degradation instead: also set
#   train_dataloader = dict(dataset=dict(pipeline=_base_.train_pipeline_cpu_usm_source))
