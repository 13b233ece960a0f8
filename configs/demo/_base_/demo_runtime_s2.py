# Stage-2 runtime of the demo configs: the stage-2 optimizers of every DiffIR recipe (Adam 2e-4:
# CPEN_S2 + denoiser during the warm-up, then everything), cosine decay, a shorter run.
_base_ = ['./demo_runtime_s1.py', '../../_base_/models/diffir_stage2.py']

max_iters = 500
encoder_iters = 100  # CPEN_S2 + denoiser only (cheap: the DIRformer idles), then jointly
# The task configs use `model = dict(_base_.demo_s2_model, stage1_checkpoint=...)`.
demo_s2_model = dict(
    _base_.stage2_model,
    generator=dict(_base_.stage2_model['generator'], **_base_.demo_generator),
    train_cfg=dict(encoder_iters=encoder_iters))
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
optim_wrapper = dict(_base_.stage2_optim_wrapper, _delete_=True)
param_scheduler = dict(
    _delete_=True,
    encoder=[dict(type='CosineAnnealingLR', by_epoch=False, begin=0, end=max_iters,
                  eta_min=2e-6)],
    generator=[dict(type='CosineAnnealingLR', by_epoch=False, begin=encoder_iters,
                    end=max_iters, eta_min=2e-6)])
model_wrapper_cfg = _base_.stage2_model_wrapper_cfg
custom_hooks = [dict(_base_.custom_hooks[0], start_iter=int(0.6 * max_iters))]
default_hooks = dict(checkpoint=dict(interval=max_iters))
