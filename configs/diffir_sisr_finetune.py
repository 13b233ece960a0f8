# Fine-tune DiffIR bicubic x4 super-resolution (the GAN SISR model) on your own images, on one
# GPU (docs/user_guides/own_data.md).
#
#   python tools/prepare_data.py images photos/ data/own_images --min-size 256
#   python tools/train.py configs/diffir_sisr_finetune.py \
#       --cfg-options model.stage2_checkpoint=SISR-DiffIRS2-GAN.pth \
#                     model.stage1_checkpoint=SISR-DiffIRS1.pth \
#                     model.perceptual_loss.vgg_path=checkpoints/vgg19-dcbb9e9d.pth
#   python tools/test.py configs/diffir_sisr_finetune.py \
#       work_dirs/diffir_sisr_finetune/best_val_PSNR_iter_N.pth
#
# What is fine-tuned: the GAN stage alone (the released model's last stage). The generator
# starts from the released stage-2 GAN model (`model.stage2_checkpoint`), the frozen teacher
# from the released stage-1 model (`model.stage1_checkpoint`; not needed when the stage-2 file
# stores it: converted with tools/convert_official_ckpt.py --teacher). The U-Net discriminator
# is not released and starts fresh: it alone trains for the first 1k iterations
# (`disc_init_steps`) so that the generator does not learn from an untrained critic. Training
# pairs are made on the fly: a random 256 GT patch (reflect-padded when the image is smaller),
# the 8 flips / rotations, and its bicubic x4 downscale (Pillow, antialiased like MATLAB's
# imresize, which made the released training data).
#
# One GPU: batch 4, generator Adam 2e-5 after a 1k-iteration warm-up (official 2e-4 at 8 GPUs x
# 8), discriminator 1e-4, cosine decay over 20k iterations, EMA 0.999; `--auto-scale-lr`
# multiplies by (GPUs x batch) / 4. Validation every 2k iterations: PSNR / SSIM (Y, crop 4) of
# the held-out images from their bicubic x4 downscale; the best (val/PSNR) checkpoint is kept.
_base_ = ['./diffir_sisr_x4_s2_gan.py', './_base_/datasets/own_data.py',
          './_base_/schedules/own_finetune.py']

experiment_name = 'diffir_sisr_finetune'
work_dir = f'./work_dirs/{experiment_name}'

gt_size = 256

model = dict(
    stage2_checkpoint='checkpoints/SISR-DiffIRS2-GAN.pth',
    stage1_checkpoint='checkpoints/SISR-DiffIRS1.pth',
    train_cfg=dict(disc_init_steps=_base_.finetune_warmup))

train_pipeline = [
    _base_.own_load_gt,
    dict(type='PadToMinSize', keys=['gt'], min_size=gt_size),
    dict(type='Crop', keys=['gt'], crop_size=(gt_size, gt_size), random_crop=True),
    *[dict(step, keys=['gt']) for step in _base_.own_dihedral_augs],
    _base_.own_bicubic_lr,
    dict(type='PackInputs'),
]
train_dataloader = dict(
    _base_.own_train_loader, _delete_=True,
    dataset=dict(_base_.own_images_train, pipeline=train_pipeline))
val_dataloader = dict(_base_.own_bicubic_sr_eval_loader, _delete_=True)
test_dataloader = val_dataloader
val_evaluator = _base_.finetune_sr_evaluator
test_evaluator = val_evaluator
val_cfg = dict(type='MultiValLoop')  # MMagic's metrics
test_cfg = dict(type='MultiTestLoop')

train_cfg = _base_.finetune_train_cfg
optim_wrapper = dict(generator=dict(optimizer=dict(lr=2e-5)),
                     discriminator=dict(optimizer=dict(lr=1e-4)))
param_scheduler = dict(_base_.finetune_gan_schedule, _delete_=True)
custom_hooks = [_base_.finetune_ema_hook]
default_hooks = dict(_base_.finetune_default_hooks,
                     checkpoint=dict(_base_.finetune_default_hooks['checkpoint'],
                                     save_best='val/PSNR'))
auto_scale_lr = dict(enable=False, base_batch_size=4)
