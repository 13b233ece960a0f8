# DiffIR stage 2-GAN "V1" (fidelity), real-world x4 SR (official train_DiffIRS2_GAN_x4.yml).
# Starts from the stage-2 model; the stage-1 network stays the frozen teacher. 400k iterations.
#   --cfg-options model.stage2_checkpoint=work_dirs/diffir_sr_s2/iter_1000000.pth \
#                 model.stage1_checkpoint=work_dirs/diffir_sr_s1/iter_1000000.pth \
#                 model.perceptual_loss.vgg_path=checkpoints/vgg19-dcbb9e9d.pth
_base_ = ['./diffir_sr_s2.py']

experiment_name = 'diffir_sr_s2_gan'
work_dir = f'./work_dirs/{experiment_name}'

vgg_path = 'checkpoints/vgg19-dcbb9e9d.pth'  # torchvision VGG19 weights, local file

model = dict(
    type='DiffIRS2GAN',
    stage2_checkpoint='work_dirs/diffir_sr_s2/iter_1000000.pth',
    stage1_checkpoint='work_dirs/diffir_sr_s1/iter_1000000.pth',
    discriminator=dict(
        type='UNetDiscriminatorWithSpectralNorm',
        in_channels=3,
        mid_channels=64,
        skip_connection=True),
    perceptual_loss=dict(
        type='VGGPerceptualLoss',
        vgg_path=vgg_path,
        layer_weights={'conv1_2': 0.1, 'conv2_2': 0.1, 'conv3_4': 1.0, 'conv4_4': 1.0,
                       'conv5_4': 1.0},
        perceptual_weight=1.0,
        style_weight=0.0,
        use_input_norm=True,
        criterion='l1'),
    gan_loss=dict(
        type='GANLoss', gan_type='vanilla', loss_weight=1.0, real_label_val=1.0,
        fake_label_val=0.0),
    train_cfg=dict(
        _delete_=True, encoder_iters=0, l1_gt_usm=False, percep_gt_usm=False,
        gan_gt_usm=False, disc_steps=1, disc_init_steps=0))

train_cfg = dict(type='IterBasedTrainLoop', max_iters=400000, val_interval=5000)

optim_wrapper = dict(
    _delete_=True,
    constructor='MultiOptimWrapperConstructor',
    generator=dict(
        type='OptimWrapper',
        optimizer=dict(type='Adam', lr=1e-4, betas=(0.9, 0.99), weight_decay=0)),
    discriminator=dict(
        type='OptimWrapper',
        optimizer=dict(type='Adam', lr=1e-4, betas=(0.9, 0.99), weight_decay=0)))

# Official: generator lr 1e-4 * 0.5^(it // 300k); discriminator constant.
param_scheduler = dict(
    _delete_=True,
    generator=[dict(type='MultiStepLR', by_epoch=False, milestones=[300000], gamma=0.5)],
    discriminator=[dict(type='ConstantLR', by_epoch=False, factor=1.0)])

model_wrapper_cfg = dict(type='MMSeparateDistributedDataParallel', find_unused_parameters=False)
