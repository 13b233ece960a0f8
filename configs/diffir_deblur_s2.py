# DiffIR stage 2, motion deblurring on GoPro
# (official DiffIR-demotionblur/options/train_DiffIRS2.yml).
# Needs the stage-1 checkpoint:
#   --cfg-options model.stage1_checkpoint=work_dirs/diffir_deblur_s1/iter_300000.pth
_base_ = ['./diffir_deblur_s1.py', './_base_/models/diffir_stage2.py']

experiment_name = 'diffir_deblur_s2'
work_dir = f'./work_dirs/{experiment_name}'

model = dict(
    _base_.stage2_model,
    stage1_checkpoint='work_dirs/diffir_deblur_s1/iter_300000.pth',
    train_cfg=dict(
        encoder_iters=100000,  # CPEN_S2 + denoiser only, IPR loss only
        progressive=dict(
            iters=[150000, 60000, 50000, 60000, 40000, 40000],
            mini_batch_sizes=[8, 4, 2, 2, 1, 1],
            gt_sizes=[192, 256, 320, 384, 464, 512])))
# The 464/512 phases start after sum(iters[:4]) iterations. To fit them on smaller GPUs, resume
# there with block checkpointing (it changes no weight, only memory and time):
#   --resume --cfg-options model.generator.with_cp=True

# val_freq / save_checkpoint_freq 5e3 (official train_DiffIRS2.yml; checkpoint hook of S1)
train_cfg = dict(type='IterBasedTrainLoop', max_iters=400000, val_interval=5000)
optim_wrapper = dict(_base_.stage2_optim_wrapper, _delete_=True)
# Official manual rules: warm-up 2e-4 * 0.1^(it // 60k); joint 2e-4 * 0.5^((it - 100k) // 80k).
param_scheduler = dict(
    _delete_=True,
    encoder=[dict(type='MultiStepLR', by_epoch=False, milestones=[60000], gamma=0.1)],
    generator=[dict(type='MultiStepLR', by_epoch=False, milestones=[180000, 260000, 340000],
                    gamma=0.5)])
model_wrapper_cfg = _base_.stage2_model_wrapper_cfg
