# DiffIR super-resolution network (official DiffIR-RealSR / DiffIR-SRGAN options/*.yml, x4).
# x2 / x1 configs override generator.scale. Stage-1 model; stage-2 configs switch the types.
model = dict(
    type='DiffIRS1',
    generator=dict(
        type='DiffIRS1Net',
        task='sr',
        scale=4,
        inp_channels=3,
        out_channels=3,
        dim=64,
        num_blocks=[13, 1, 1, 1],
        num_refinement_blocks=13,
        heads=[1, 2, 4, 8],
        ffn_expansion_factor=2.2,
        bias=False,
        LayerNorm_type='BiasFree',
        n_encoder_res=9),
    pixel_loss=dict(type='L1Loss', loss_weight=1.0, reduction='mean'),
    is_use_ema=True,
    data_preprocessor=dict(
        type='DataPreprocessor',
        mean=[0., 0., 0.],
        std=[255., 255., 255.],
        output_channel_order='RGB'))
