# DiffIR stage 2, bicubic x2 SISR (official DiffIR-SRGAN/options/train_DiffIRS2_x2.yml):
# joint from the start (encoder_iter 0), MultiStepLR [500k, 700k] x0.5, 1M iterations.
#   --cfg-options model.stage1_checkpoint=work_dirs/diffir_sisr_x2_s1/iter_1000000.pth
_base_ = ['./diffir_sisr_x2_s1.py', './_base_/models/diffir_stage2.py']

experiment_name = 'diffir_sisr_x2_s2'
work_dir = f'./work_dirs/{experiment_name}'

model = dict(
    _base_.stage2_model,
    stage1_checkpoint='work_dirs/diffir_sisr_x2_s1/iter_1000000.pth',
    train_cfg=dict(encoder_iters=0))
optim_wrapper = dict(_base_.stage2_optim_wrapper, _delete_=True)
param_scheduler = dict(
    _delete_=True,
    encoder=[dict(type='MultiStepLR', by_epoch=False, milestones=[500000, 700000], gamma=0.5)],
    generator=[dict(type='MultiStepLR', by_epoch=False, milestones=[500000, 700000],
                    gamma=0.5)])
model_wrapper_cfg = _base_.stage2_model_wrapper_cfg
