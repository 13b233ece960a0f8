# Fine-tune DiffIR real-world x4 super-resolution (the released GAN model) on your own images,
# on one GPU (docs/user_guides/own_data.md).
#
#   python tools/prepare_data.py images photos/ data/own_images
#   python tools/train.py configs/diffir_sr_finetune.py \
#       --cfg-options model.stage2_checkpoint=DiffIRS2-GAN.pth \
#                     model.stage1_checkpoint=DiffIRS1.pth \
#                     model.perceptual_loss.vgg_path=checkpoints/vgg19-dcbb9e9d.pth
#   python tools/test.py configs/diffir_sr_finetune.py \
#       work_dirs/diffir_sr_finetune/best_val_PSNR_iter_N.pth
#
# What is fine-tuned: the GAN stage alone, as the official finetune_DiffIRS2_GAN_x4_V2.yml does
# (V2 from V1): the generator starts from a released stage-2 GAN model (`DiffIRS2-GAN.pth`, V1,
# or `DiffIRS2-GANv2.pth`), the frozen teacher from the released stage-1 model (`DiffIRS1.pth`;
# not needed when the stage-2 file stores it: converted with --teacher). Your images are ground
# truth only: the recipe's second-order Real-ESRGAN degradation synthesises the inputs on the
# fly (batched on the device), so they need not be paired. The discriminator is not released:
# it starts fresh and alone trains for the first 1k iterations (`disc_init_steps`), then the
# generator warms up.
#
# One GPU: batch 6 (the 180-sample training queue needs a batch that divides 180), generator
# Adam 2e-5 (official 1e-4 at 8 GPUs x 9), discriminator 1e-4, cosine decay over 20k iterations,
# EMA 0.999; `--auto-scale-lr` multiplies by (GPUs x batch) / 6. Validation every 2k iterations:
# PSNR / SSIM (Y, crop 4) of the held-out images from their bicubic x4 downscale -- a fidelity
# check (real inputs are degraded at random); the best (val/PSNR) checkpoint is kept. For V2
# (sharper, denoises more) use `model.train_cfg.l1_gt_usm=True model.train_cfg.percep_gt_usm=True
# model.data_preprocessor.degrade_unsharp_gt=True` (see diffir_sr_s2_gan_v2.py).
_base_ = ['./diffir_sr_s2_gan.py', './_base_/datasets/own_data.py',
          './_base_/schedules/own_finetune.py']

experiment_name = 'diffir_sr_finetune'
work_dir = f'./work_dirs/{experiment_name}'

model = dict(
    stage2_checkpoint='checkpoints/DiffIRS2-GAN.pth',
    stage1_checkpoint='checkpoints/DiffIRS1.pth',
    train_cfg=dict(disc_init_steps=_base_.finetune_warmup))

# the recipe's GT pipeline (crop to 400, flip, kernels) on your images
train_dataloader = dict(
    batch_size=6, num_workers=4,
    dataset=dict(data_root=_base_.own_images_root, data_prefix=dict(gt='train'), ann_file=''))
val_dataloader = dict(_base_.own_bicubic_sr_eval_loader, _delete_=True)
test_dataloader = val_dataloader
val_evaluator = _base_.finetune_sr_evaluator
test_evaluator = val_evaluator
val_cfg = dict(type='MultiValLoop')  # MMagic's metrics
test_cfg = dict(type='MultiTestLoop')

train_cfg = _base_.finetune_train_cfg
optim_wrapper = dict(generator=dict(optimizer=dict(lr=2e-5)))
param_scheduler = dict(_base_.finetune_gan_schedule, _delete_=True)
custom_hooks = [_base_.finetune_ema_hook]
default_hooks = dict(_base_.finetune_default_hooks,
                     checkpoint=dict(_base_.finetune_default_hooks['checkpoint'],
                                     save_best='val/PSNR'))
auto_scale_lr = dict(enable=False, base_batch_size=6)
