# What the S2-GAN stage adds to a stage-2 SR model (official train_DiffIRS2_GAN_x*.yml).
# Used as `model = dict(_base_.gan_model, ...)`; VGG19 weights come from a local file.
vgg_path = 'checkpoints/vgg19-dcbb9e9d.pth'  # torchvision VGG19 state dict, never downloaded

gan_model = dict(
    type='DiffIRS2GAN',
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
    # V1; the *_v2 configs switch l1_gt_usm / percep_gt_usm on
    train_cfg=dict(
        _delete_=True, encoder_iters=0, l1_gt_usm=False, percep_gt_usm=False,
        gan_gt_usm=False, disc_steps=1, disc_init_steps=0))


# Real-SR recipe: generator and discriminator Adam 1e-4, betas (0.9, 0.99).
gan_optim_wrapper = dict(
    constructor='MultiOptimWrapperConstructor',
    generator=dict(
        type='OptimWrapper',
        optimizer=dict(type='Adam', lr=1e-4, betas=(0.9, 0.99), weight_decay=0)),
    discriminator=dict(
        type='OptimWrapper',
        optimizer=dict(type='Adam', lr=1e-4, betas=(0.9, 0.99), weight_decay=0)))

gan_model_wrapper_cfg = dict(
    type='MMSeparateDistributedDataParallel', find_unused_parameters=False)
