# Fine-tune DiffIR inpainting on your own images, on one GPU (docs/user_guides/own_data.md).
#
#   python tools/prepare_data.py images photos/ data/own_images
#   python tools/train.py configs/diffir_inpaint_finetune.py \
#       --cfg-options model.stage2_checkpoint=DiffIRS2-place/models/last.ckpt \
#                     model.discriminator_checkpoint=DiffIRS2-place/models/last.ckpt
#   python tools/test.py configs/diffir_inpaint_finetune.py \
#       work_dirs/diffir_inpaint_finetune/best_val_SSIM_iter_N.pth
#
# What is fine-tuned: stage 2 alone. The released experiment's `last.ckpt` (LaMa / Lightning)
# holds the stage-2 network and its stage-1 teacher, so `model.stage2_checkpoint` alone
# initialises the generator and the frozen teacher (so does a file converted with
# tools/convert_official_ckpt.py; our training checkpoints leave the teacher out and also need
# `model.stage1_checkpoint`). Training is the Places recipe's:
# LaMa's augmentations and random 256 crops of your images, LaMa's training masks drawn anew per
# sample, the LaMa losses + L_diff against the teacher. The discriminator continues from the
# released one (`model.discriminator_checkpoint`: the same last.ckpt; None: fresh). The big
# Places model: add `model.generator.n_encoder_res=8 model.generator.num_blocks=[1,1,1,20]`.
# The ResNet-PL loss reads LaMa's ADE20k weights from `checkpoints/ade20k` (a local folder).
#
# One GPU: batch 4, Adam generator 2e-5 after a 1k-iteration warm-up (official 2e-4 at 8 GPUs x
# 4), discriminator 1e-5, gradients clipped to 1, 20k iterations; `--auto-scale-lr` multiplies
# by (GPUs x batch) / 4. Validation every 2k iterations on LaMa's samples of the held-out images
# (the Places protocol: 512 short side, thick 512 masks seeded per file name, a square around
# the mask; images whose masks all cover more than half are left out and counted): SSIM / PSNR
# of the blended output (FID and LPIPS need their own weight files: see
# configs/_base_/datasets/places_inpaint.py); the best (val/SSIM) checkpoint is kept.
# tools/test.py scores the thin and the thick masks.
_base_ = ['./diffir_inpaint_places_s2.py', './_base_/datasets/own_data.py',
          './_base_/schedules/own_finetune.py']

experiment_name = 'diffir_inpaint_finetune'
work_dir = f'./work_dirs/{experiment_name}'

released = 'checkpoints/DiffIRS2-place/models/last.ckpt'
model = dict(stage2_checkpoint=released, stage1_checkpoint=None,
             discriminator_checkpoint=released)


def _metrics(prefix):
    return [dict(type='SSIM', crop_border=0, prefix=prefix),
            dict(type='PSNR', crop_border=0, prefix=prefix),
            dict(type='ImageCount', prefix=prefix)]  # images without a LaMa sample are left out


def _eval(pipeline):
    dataset = dict(_base_.eval_dataset, metainfo=_base_.own_images_val['metainfo'],
                   data_root=_base_.own_images_root, data_prefix=dict(gt='val'))
    return dict(_base_.own_eval_loader, dataset=dict(dataset, pipeline=pipeline))


train_dataloader = dict(
    _base_.own_train_loader, _delete_=True,
    dataset=dict(_base_.own_images_train, pipeline=_base_.train_pipeline))
val_dataloader = dict(_eval(_base_.thick_pipeline), _delete_=True)
val_evaluator = _metrics('val')
test_dataloader = [_eval(_base_.thin_pipeline), _eval(_base_.thick_pipeline)]
test_evaluator = [dict(type='Evaluator', metrics=_metrics('thin512')),
                  dict(type='Evaluator', metrics=_metrics('thick512'))]

train_cfg = _base_.finetune_train_cfg
optim_wrapper = dict(generator=dict(optimizer=dict(lr=2e-5)),
                     discriminator=dict(optimizer=dict(lr=1e-5)))
param_scheduler = dict(generator=_base_.finetune_generator_schedule,
                       discriminator=[dict(type='ConstantLR', by_epoch=False, factor=1.0)])
default_hooks = dict(_base_.finetune_default_hooks,
                     checkpoint=dict(_base_.checkpoint_hook, **_base_.finetune_default_hooks[
                         'checkpoint'], save_best='val/SSIM'))
auto_scale_lr = dict(enable=False, base_batch_size=4)
