# CelebA-HQ 256 inpainting data of DiffIR-inpainting (LaMa's recipe; shared parts in
# lama_inpaint.py).
#
# Split (LaMa fetch_data/celebahq_dataset_prepare.sh): the 28,000 images of train_shuffled.flist
# are shuffled, the first 2,000 become val_source_256 (the protocol's test images), the other
# 26,000 train_256; val_shuffled.flist gives visual_test_source_256. Images are 256x256.
# Train: no augmentation (official `no_augs`), no crop; LaMa's training mask mix
#   (abl-04-256-mh-dist-celeba: strokes + boxes), drawn anew per sample.
# Val (during training): val_source_256 with thick_256 masks seeded by file name.
# Test: the thin ("narrow") and thick ("wide") 256 protocol (FID 2048-d, LPIPS-VGG, SSIM on the
#   blended output). Default: masks generated from `eval_mask_seed` (the same masks in every
#   run; an image whose 5 mask variants all cover more than half of it gets another round,
#   where LaMa leaves it out); `test_dataloader_mask_files` reads LaMa's generated folders
#   (val_256/random_{thin,thick}_256: <name>.png + <name>_mask000.png) instead.
# Padding (LaMa pad_out_to_modulo 8 + unpadding): the DiffIR networks pad every input to a
#   multiple of 8 and crop the output back, so images of any size can be evaluated.
_base_ = ['./lama_inpaint.py']

data_root = 'data/celeba-hq-dataset'
train_prefix = 'train_256'
eval_prefix = 'val_source_256'
metric_prefix = 'CelebAHQ'

train_pipeline = [
    _base_.load_gt,
    dict(type='GenerateInpaintingMask', preset='train'),
    _base_.masked_image,
    _base_.pack,
]
thin_pipeline = [
    _base_.load_gt,
    dict(type='GenerateInpaintingMask', preset='thin_256', seed=_base_.eval_mask_seed),
    _base_.masked_image,
    _base_.pack,
]
thick_pipeline = [
    _base_.load_gt,
    dict(type='GenerateInpaintingMask', preset='thick_256', seed=_base_.eval_mask_seed),
    _base_.masked_image,
    _base_.pack,
]

metainfo = dict(dataset_type='celeba-hq', task_name='inpainting')

train_dataloader = dict(
    dataset=dict(
        type=_base_.dataset_type,
        metainfo=metainfo,
        data_root=data_root,
        data_prefix=dict(gt=train_prefix),
        pipeline=train_pipeline))

eval_dataset = dict(
    type=_base_.dataset_type,
    metainfo=metainfo,
    data_root=data_root,
    data_prefix=dict(gt=eval_prefix),
    test_mode=True)
val_dataloader = dict(_base_.eval_loader_cfg, dataset=dict(eval_dataset, pipeline=thick_pipeline))
val_evaluator = [dict(metric, prefix=f'{metric_prefix}-val') for metric in _base_.eval_metrics]

test_dataloader = [
    dict(_base_.eval_loader_cfg, dataset=dict(eval_dataset, pipeline=thin_pipeline)),
    dict(_base_.eval_loader_cfg, dataset=dict(eval_dataset, pipeline=thick_pipeline)),
]
test_dataloader_mask_files = [
    dict(_base_.eval_loader_cfg, dataset=dict(
        _base_.mask_file_dataset, metainfo=metainfo, data_root=data_root,
        data_prefix=dict(gt=folder, mask=folder)))
    for folder in ('val_256/random_thin_256', 'val_256/random_thick_256')
]
test_evaluator = [
    dict(type='Evaluator',
         metrics=[dict(metric, prefix=f'{metric_prefix}-{protocol}')
                  for metric in _base_.eval_metrics])
    for protocol in ('thin256', 'thick256')
]
