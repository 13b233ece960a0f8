# Places2-Standard inpainting data of DiffIR-inpainting (LaMa's recipe; DiffIR method notes, 2.5,
# 3; LaMa fetch_data/places_standard_*.sh; shared parts in lama_inpaint.py).
#
# Train: places_standard_dataset/train (train_large_places365standard, every image found
#   recursively); LaMa's `distortions` augmentations ending in a random 256 crop
#   (`place_train_augs`, albumentations 1.4 equivalents of LaMa's albumentations 0.5.2 / imgaug
#   list, see diffir_mm/datasets/transforms/lama_augment.py), then LaMa's training mask mix
#   (abl-04-256-mh-dist: strokes + boxes), drawn anew per sample.
# Val (during training): val_hires (2,000 sampled test_large images) at 512 with thick_512 masks.
# Test: the 512 protocol on evaluation/hires (30,000 sampled val_large images), thin ("narrow")
#   and thick ("wide") masks; FID 2048-d, LPIPS-VGG, SSIM on the blended output. Each sample is
#   made as LaMa's bin/gen_mask_dataset.py makes it (LamaEvalSample): the image resized to a 512
#   short side (bicubic), the mask drawn on the whole resized image, image and mask cut to a
#   square overlapping the mask; an image whose 5 mask variants all cover more than half of
#   their square is left out, as LaMa does (LamaEvalDataset; ImageCount reports ImageCount and
#   DroppedImages). Masks come from `eval_mask_seed` and the file name.
#   `test_dataloader_mask_files` reads LaMa-style folders (evaluation/random_{thin,thick}_512:
#   <name>.png + <name>_mask000.png) instead: LaMa's own, or the same samples written by
#   tools/make_eval_masks.py.
# Padding (LaMa pad_out_to_modulo 8 + unpadding): the DiffIR networks pad every input to a
#   multiple of 8 and crop the output back.
_base_ = ['./lama_inpaint.py']

data_root = 'data/places_standard_dataset'
train_prefix = 'train'
val_prefix = 'val_hires'
eval_prefix = 'evaluation/hires'
crop_size = 256  # training patches
eval_size = 512
metric_prefix = 'Places'

# LaMa get_transforms('distortions', 256), defaults of albumentations 0.5.2 / imgaug written out.
# OpenCV constants: INTER_LINEAR 1, BORDER_REPLICATE 1, BORDER_REFLECT_101 4.
place_train_augs = [
    # IAAPerspective2(scale=(0.0, 0.06)): p 0.5, bilinear, replicate border
    dict(type='Perspective', scale=(0.0, 0.06), keep_size=True, border_mode=1, interpolation=1,
         p=0.5),
    # IAAAffine2: p 0.5, bilinear, imgaug mode 'reflect' (= reflect-101), x/y scales independent
    dict(type='Affine', scale=(0.7, 1.3), rotate=(-40, 40), shear=(-0.1, 0.1), interpolation=1,
         border_mode=4, p=0.5),
    dict(type='PadIfNeeded', min_height=crop_size, min_width=crop_size, border_mode=4, p=1.0),
    # OpticalDistortion(): distort_limit 0.05 (its pixel shift_limit 0.05 rounds to 0), p 0.5
    dict(type='LamaOpticalDistortion', distort_limit=0.05, p=0.5),
    dict(type='RandomCrop', height=crop_size, width=crop_size, p=1.0),
    dict(type='HorizontalFlip', p=0.5),
    dict(type='CLAHE', clip_limit=4.0, tile_grid_size=(8, 8), p=0.5),
    dict(type='RandomBrightnessContrast', brightness_limit=0.2, contrast_limit=0.2, p=0.5),
    dict(type='HueSaturationValue', hue_shift_limit=5, sat_shift_limit=30, val_shift_limit=5,
         p=0.5),
]

train_pipeline = [
    _base_.load_gt,
    dict(type='SeededAlbumentations', keys=['gt'], transforms=place_train_augs),
    dict(type='GenerateInpaintingMask', preset='train'),
    _base_.masked_image,
    _base_.pack,
]

# LaMa's gen_mask_dataset.py decodes with PIL's Image.open(...).convert('RGB'), which ignores
# EXIF rotation; so does this (LamaEvalDataset reads the image sizes from the file headers)
eval_load = dict(_base_.load_gt, color_type='color_ignore_orientation', imdecode_backend='pillow')
eval_sample = dict(type='LamaEvalSample', seed=_base_.eval_mask_seed, short_side=eval_size)
thin_pipeline = [
    eval_load, dict(eval_sample, preset='thin_512'), _base_.masked_image, _base_.pack]
thick_pipeline = [
    eval_load, dict(eval_sample, preset='thick_512'), _base_.masked_image, _base_.pack]

metainfo = dict(dataset_type='places2', task_name='inpainting')

train_dataloader = dict(
    dataset=dict(
        type=_base_.dataset_type,
        metainfo=metainfo,
        data_root=data_root,
        data_prefix=dict(gt=train_prefix),
        recursive=True,
        pipeline=train_pipeline))

# images without a LaMa sample are left out (LamaEvalDataset); ImageCount reports how many
eval_dataset = dict(type='LamaEvalDataset', metainfo=metainfo, data_root=data_root, test_mode=True)
eval_metrics = [*_base_.eval_metrics, dict(type='ImageCount')]

val_dataloader = dict(
    _base_.eval_loader_cfg,
    dataset=dict(eval_dataset, data_prefix=dict(gt=val_prefix), pipeline=thick_pipeline))
val_evaluator = [dict(metric, prefix=f'{metric_prefix}-val') for metric in eval_metrics]

test_dataloader = [
    dict(_base_.eval_loader_cfg,
         dataset=dict(eval_dataset, data_prefix=dict(gt=eval_prefix), pipeline=thin_pipeline)),
    dict(_base_.eval_loader_cfg,
         dataset=dict(eval_dataset, data_prefix=dict(gt=eval_prefix), pipeline=thick_pipeline)),
]
test_dataloader_mask_files = [
    dict(_base_.eval_loader_cfg, dataset=dict(
        _base_.mask_file_dataset, metainfo=metainfo, data_root=data_root,
        data_prefix=dict(gt=folder, mask=folder)))
    for folder in ('evaluation/random_thin_512', 'evaluation/random_thick_512')
]
test_evaluator = [
    dict(type='Evaluator',
         metrics=[dict(metric, prefix=f'{metric_prefix}-{protocol}') for metric in eval_metrics])
    for protocol in ('thin512', 'thick512')
]
