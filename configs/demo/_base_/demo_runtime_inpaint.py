# Runtime of the inpainting demo configs (tools/demo.py --task inpaint), both stages: the
# recipe's two optimizers (generator, discriminator; gradients clipped to 1) at demo learning
# rates, constant as in the official trainers, no EMA (none officially), one checkpoint at the end.
_base_ = ['../../_base_/default_runtime.py']

# 16 channels and one block per level instead of 52 channels and [1, 1, 1, 9] blocks.
demo_generator = dict(dim=16, num_blocks=[1, 1, 1, 1], heads=[1, 2, 4, 8], n_encoder_res=1)
# What the demo changes in the recipe's model: a smaller discriminator, whose step reuses the
# generator step's output (official: a second generator forward); no ResNet-PL loss (its ADE20k
# weights are a separate download); and, without that loss, the holes are also taught by the L1
# term (official: weight_missing 0, the holes learn from ResNet-PL and the GAN only).
demo_model = dict(
    generator=demo_generator,
    discriminator=dict(ndf=32, n_layers=3),
    masked_l1_loss=dict(weight_missing=10.0),
    resnet_pl_loss=None,
    train_cfg=dict(disc_regenerate=False))

max_iters = 400
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
# merged into the model base's optim_wrapper by the task configs
demo_optim_wrapper = dict(
    generator=dict(optimizer=dict(lr=1e-3)), discriminator=dict(optimizer=dict(lr=5e-4)))
custom_hooks = []
default_hooks = dict(
    logger=dict(interval=25),
    checkpoint=dict(interval=max_iters, save_best=None, max_keep_ckpts=1, save_optimizer=False))
log_processor = dict(window_size=25)
visualizer = dict(vis_backends=[dict(type='LocalVisBackend')])
randomness = dict(seed=2023)
