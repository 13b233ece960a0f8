# Fine-tune DiffIR deblurring on your own pairs, on one GPU (docs/user_guides/own_data.md).
#
#   python tools/prepare_data.py pairs blurry/ sharp/ data/own_pairs --crop 256
#   python tools/train.py configs/diffir_deblur_finetune.py \
#       --cfg-options model.stage2_checkpoint=DiffIRS2.pth model.stage1_checkpoint=DiffIRS1.pth
#   python tools/test.py configs/diffir_deblur_finetune.py \
#       work_dirs/diffir_deblur_finetune/best_val_PSNR_iter_N.pth
#
# What is fine-tuned: stage 2 alone. The whole stage-2 network (DIRformer + CPEN_S2 + denoiser)
# starts from a trained stage-2 model (`model.stage2_checkpoint`: the released
# train_DiffIRS2 net_g file, or one of ours) and keeps learning L1(I, GT) + L1(z_S2, z_S1); the
# frozen stage-1 teacher (`model.stage1_checkpoint`, the released train_DiffIRS1 file; not
# needed when the stage-2 file stores it: converted with tools/convert_official_ckpt.py
# --teacher) supplies z_S1. Both stages were
# trained on GoPro's motion blur; stage 2 alone adapts the deployed network to your blur in a
# few hours, while re-running stage 1 (S1 -> S2: `diffir_deblur_s1.py` then `_s2.py` with the
# data lines below) only pays off when your degradation is far from motion blur.
#
# One GPU: batch 4 of 256x256 patches, no progressive schedule, block checkpointing on
# (`model.generator.with_cp`: same gradients, ~1/3 of the activation memory -- a deblurring
# stage-2 step at 256x256 holds ~6.5 GB of activations per image without it, ~1.5 GB with it,
# bench/README.md), Adam 2e-5 (the official stage-2 rate 2e-4 at 8 GPUs x 8, x ~1/10 for
# fine-tuning) after a 1k-iteration warm-up, cosine to 1e-6 over 20k iterations, EMA 0.999. More
# GPUs: `--auto-scale-lr` multiplies the rate by (GPUs x batch) / 4. `tools/train.py CONFIG
# --plan --memory 24G` measures the peak per GPU with and without with_cp, fp32 and bf16.
# Validation: PSNR / SSIM on the 512 centre crop of every held-out pair every 2k iterations; the
# best checkpoint (val/PSNR) is kept.
_base_ = [
    './_base_/default_runtime.py',
    './_base_/datasets/own_data.py',
    './_base_/models/diffir_deblur.py',
    './_base_/models/diffir_stage2.py',
    './_base_/schedules/own_finetune.py',
]

experiment_name = 'diffir_deblur_finetune'
work_dir = f'./work_dirs/{experiment_name}'

gt_size = 256

model = dict(
    _base_.stage2_model,
    generator=dict(_base_.stage2_model['generator'], with_cp=True),
    stage2_checkpoint='checkpoints/DiffIRS2_deblur.pth',
    stage1_checkpoint='checkpoints/DiffIRS1_deblur.pth',
    train_cfg=dict(encoder_iters=0))  # joint from the start: CPEN_S2 is trained already

train_pipeline = [
    _base_.own_load_img,
    _base_.own_load_gt,
    dict(type='SetValues', dictionary=dict(scale=1)),
    dict(type='PairedRandomCrop', gt_patch_size=gt_size),
    *_base_.own_dihedral_augs,
    dict(type='PackInputs'),
]
val_pipeline = [
    _base_.own_load_img,
    _base_.own_load_gt,
    dict(type='Crop', keys=['img', 'gt'], crop_size=(512, 512), random_crop=False),
    dict(type='PackInputs'),
]
test_pipeline = [_base_.own_load_img, _base_.own_load_gt, dict(type='PackInputs')]

train_dataloader = dict(
    _base_.own_train_loader, dataset=dict(_base_.own_pairs_train, pipeline=train_pipeline))
val_dataloader = dict(
    _base_.own_eval_loader, dataset=dict(_base_.own_pairs_val, pipeline=val_pipeline))
test_dataloader = dict(
    _base_.own_eval_loader, dataset=dict(_base_.own_pairs_val, pipeline=test_pipeline))
val_evaluator = [dict(type='PSNR', crop_border=0, prefix='val'),
                 dict(type='SSIM', crop_border=0, prefix='val')]
test_evaluator = val_evaluator

train_cfg = _base_.finetune_train_cfg
val_cfg = dict(type='MultiValLoop')  # MMagic's metrics
test_cfg = dict(type='MultiTestLoop')

# one optimizer for the whole generator (the `encoder` wrapper idles: encoder_iters = 0)
optim_wrapper = _base_.stage2_optim_wrapper
optim_wrapper['generator']['optimizer']['lr'] = 2e-5
param_scheduler = dict(generator=_base_.finetune_generator_schedule,
                       encoder=[dict(type='ConstantLR', by_epoch=False, factor=1.0)])
model_wrapper_cfg = _base_.stage2_model_wrapper_cfg

custom_hooks = [_base_.finetune_ema_hook]
default_hooks = dict(_base_.finetune_default_hooks,
                     checkpoint=dict(_base_.finetune_default_hooks['checkpoint'],
                                     save_best='val/PSNR'))
auto_scale_lr = dict(enable=False, base_batch_size=4)
