# Demo, stage 2 (tools/demo.py --task deblur): CPEN_S2 + IPR diffusion on top of the demo's stage 1,
# built like configs/diffir_deblur_s2.py on configs/diffir_deblur_s1.py. tools/demo.py sets
# model.stage1_checkpoint to the stage-1 run's last checkpoint.
_base_ = ['./diffir_demo_deblur_s1.py', '../_base_/models/diffir_stage2.py']

experiment_name = 'diffir_demo_deblur_s2'
work_dir = f'./work_dirs/{experiment_name}'
max_iters = 600
encoder_iters = 100  # CPEN_S2 + denoiser only (cheap: the DIRformer idles), then jointly

model = dict(
    _base_.stage2_model,
    stage1_checkpoint='work_dirs/diffir_demo_deblur_s1/iter_1300.pth',
    train_cfg=dict(encoder_iters=encoder_iters))
optim_wrapper = dict(_base_.stage2_optim_wrapper, _delete_=True)  # Adam 2e-4, both phases
param_scheduler = dict(
    _delete_=True,
    encoder=[dict(type='CosineAnnealingLR', by_epoch=False, begin=0, end=max_iters,
                  eta_min=2e-6)],
    generator=[dict(type='CosineAnnealingLR', by_epoch=False, begin=encoder_iters,
                    end=max_iters, eta_min=2e-6)])
model_wrapper_cfg = _base_.stage2_model_wrapper_cfg

train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
custom_hooks = [dict(_base_.custom_hooks[0], momentum=0.02, start_iter=int(0.6 * max_iters))]
