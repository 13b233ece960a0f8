# DiffIR inpainting, stage 1 (official DiffIR-inpainting/configs/training/
# DiffIRS1-{celeba,place2}.yaml, trainer defaultS1): DIRformer + CPEN_S1 trained with LaMa's
# losses against a pix2pixHD discriminator. Network: generator/DiffIRS1-*.yaml (preset
# 'inpaint'); the big Places model (DiffIRbigS1-place2.yaml) differs only in the generator:
# model = dict(generator=_base_.big_generator) in the top-level config.
resnet_pl_weights = 'checkpoints/ade20k'  # LaMa's weights folder (TORCH_HOME), never downloaded

generator = dict(
    type='DiffIRS1Net',
    task='inpaint',
    scale=1,
    inp_channels=4,  # cat(img * (1 - mask), mask)
    out_channels=3,
    dim=52,
    num_blocks=[1, 1, 1, 9],
    num_refinement_blocks=0,
    heads=[1, 2, 4, 8],
    ffn_expansion_factor=1.8,
    bias=False,
    LayerNorm_type='WithBias',
    n_encoder_res=5)
# the big Places model (DiffIRbigS{1,2}-place2.yaml); merged into `generator` by a config
big_generator = dict(n_encoder_res=8, num_blocks=[1, 1, 1, 20])

model = dict(
    type='DiffIRInpaintS1',
    generator=generator,
    # discriminator/pix2pixhd_nlayer.yaml
    discriminator=dict(type='NLayerPatchDiscriminator', in_channels=3, ndf=64, n_layers=4),
    # losses.l1 / adversarial (kind r1, allow_scale_mask, nearest) / feature_matching / resnet_pl;
    # losses.perceptual (VGG) has weight 0 and is not built
    masked_l1_loss=dict(type='MaskedL1Loss', weight_known=10.0, weight_missing=0.0),
    adversarial_loss=dict(
        type='NonSaturatingR1Loss', loss_weight=10.0, gp_coef=0.001, mask_as_fake_target=True),
    feature_matching_loss=dict(type='DiscFeatureMatchingLoss', loss_weight=100.0),
    # losses.resnet_pl; norm_eval=False: batch statistics in training, as in the official
    # Lightning runs (model.train() reaches the encoder; see diffir_mm/models/losses/resnet_pl.py)
    resnet_pl_loss=dict(
        type='ResNetPLLoss', weights_path=resnet_pl_weights, loss_weight=30.0, norm_eval=False),
    # the discriminator step re-runs the updated generator, as Lightning's per-optimizer step
    train_cfg=dict(disc_regenerate=True),
    data_preprocessor=dict(
        type='DataPreprocessor',
        mean=[0., 0., 0.],
        std=[255., 255., 255.],
        output_channel_order='RGB'))

# optimizers/default_optimizers.yaml (Adam, default betas) + trainer gradient_clip_val 1
optim_wrapper = dict(
    constructor='MultiOptimWrapperConstructor',
    generator=dict(
        type='OptimWrapper', optimizer=dict(type='Adam', lr=2e-4), clip_grad=dict(max_norm=1)),
    discriminator=dict(
        type='OptimWrapper', optimizer=dict(type='Adam', lr=1e-4), clip_grad=dict(max_norm=1)))

# generator and discriminator are stepped separately in train_step
model_wrapper_cfg = dict(type='MMSeparateDistributedDataParallel', find_unused_parameters=False)
