# Demo, stage 2 (tools/demo.py --task inpaint): CPEN_S2 + IPR diffusion jointly with the DIRformer
# from step 0, taught by the demo's stage 1 (tools/demo.py sets model.stage1_checkpoint to that
# run's last checkpoint).
_base_ = ['../_base_/models/diffir_inpaint_s2.py', './_base_/demo_data_inpaint.py',
          './_base_/demo_runtime_inpaint.py']

max_iters = 200
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
param_scheduler = [dict(_base_.param_scheduler[0], end=max_iters)]
default_hooks = dict(checkpoint=dict(interval=max_iters))
optim_wrapper = _base_.demo_optim_wrapper
model = dict(_base_.demo_model,
             stage1_checkpoint='work_dirs/diffir_demo_inpaint_s1/iter_500.pth')
