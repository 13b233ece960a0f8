# What every demo config (tools/demo.py) shares: a small DiffIR and a few-minute CPU run on the
# photos that tools/demo.py writes. Used as `model = dict(generator=_base_.demo_generator)` etc.

# 16 channels and one block per level instead of 48-64 channels and up to 13 blocks.
demo_generator = dict(dim=16, num_blocks=[1, 1, 1, 1], num_refinement_blocks=1,
                      heads=[1, 2, 4, 8], ffn_expansion_factor=2.0, n_encoder_res=1)

# One process, in-process loading: the data are a few hundred small PNGs.
demo_train_loader = dict(batch_size=8, num_workers=0, persistent_workers=False)
demo_eval_loader = dict(num_workers=0, batch_size=1, persistent_workers=False, drop_last=False,
                        sampler=dict(type='DefaultSampler', shuffle=False))

# No checkpoint before the end (save_last writes iter_<max_iters>.pth), no best-checkpoint
# tracking (there is no validation during the demo's training; tools/test.py evaluates).
demo_default_hooks = dict(
    logger=dict(interval=25),
    checkpoint=dict(interval=1000000, save_best=None, max_keep_ckpts=1, save_optimizer=False))
demo_log_processor = dict(window_size=25)
demo_visualizer = dict(vis_backends=[dict(type='LocalVisBackend')])
