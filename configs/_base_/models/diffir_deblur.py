# DiffIR motion-deblurring network (official DiffIR-demotionblur/options/train_DiffIRS{1,2}.yml).
# Stage-1 model; stage-2 configs switch the types and add the diffusion settings.
model = dict(
    type='DiffIRS1',
    generator=dict(
        type='DiffIRS1Net',
        task='deblur',
        scale=1,
        inp_channels=3,
        out_channels=3,
        dim=48,
        num_blocks=[3, 5, 6, 6],
        num_refinement_blocks=4,
        heads=[1, 2, 4, 8],
        ffn_expansion_factor=2.0,
        bias=False,
        LayerNorm_type='WithBias',
        n_encoder_res=5,
        # Block checkpointing (MMagic's name): recompute each transformer block in backward.
        # Same gradients and weights, less activation memory for one more block forward per step
        # (measured in bench/README.md). Turn it on for the 464/512 phases, see
        # configs/diffir_deblur_s*.py.
        with_cp=False),
    pixel_loss=dict(type='L1Loss', loss_weight=1.0, reduction='mean'),
    is_use_ema=True,
    data_preprocessor=dict(
        type='DataPreprocessor',
        mean=[0., 0., 0.],
        std=[255., 255., 255.],
        output_channel_order='RGB'))
