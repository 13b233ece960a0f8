# Places2-Standard inpainting data of DiffIR-inpainting (LaMa's recipe; DiffIR method notes, 2.5,
# 3; LaMa fetch_data/places_standard_*.sh).
#
# Train: places_standard_dataset/train (train_large_places365standard, every image found
#   recursively); LaMa's `distortions` augmentations ending in a random 256 crop
#   (`place_train_augs`, albumentations 1.4 equivalents of LaMa's albumentations 0.5.2 / imgaug
#   list, see diffir_mm/datasets/transforms/lama_augment.py), then LaMa's training mask mix
#   (abl-04-256-mh-dist: strokes + boxes), drawn anew per sample.
# Val (during training): val_hires (2,000 sampled test_large images) at 512 with thick_512 masks.
# Test: the 512 protocol on evaluation/hires (30,000 sampled val_large images), thin ("narrow")
#   and thick ("wide") masks; FID 2048-d, LPIPS-VGG, SSIM on the blended output. As LaMa's
#   bin/gen_mask_dataset.py, images are resized to a 512 short side (bicubic) and cut square
#   (here the centre square; LaMa picks a random square overlapping the mask). Masks come from
#   `eval_mask_seed` and the file name. `test_dataloader_mask_files` reads LaMa's generated
#   folders (evaluation/random_{thin,thick}_512: <name>.png + <name>_mask000.png) instead.
# Padding (LaMa pad_out_to_modulo 8 + unpadding): the DiffIR networks pad every input to a
#   multiple of 8 and crop the output back.

data_root = 'data/places_standard_dataset'
train_prefix = 'train'
val_prefix = 'val_hires'
eval_prefix = 'evaluation/hires'
crop_size = 256  # training patches
eval_size = 512
eval_mask_seed = 2023  # generated evaluation masks depend only on this and the file name
fid_inception = 'checkpoints/pt_inception-2015-12-05-6726825d.pth'  # pytorch-fid weights
lpips_vgg_backbone = 'checkpoints/vgg16-397923af.pth'  # torchvision VGG16
metric_prefix = 'Places'

load_gt = dict(
    type='LoadImageFromFile',
    key='gt',
    color_type='color',
    channel_order='rgb',
    imdecode_backend='cv2')
masked_image = dict(
    type='GetMaskedImage', img_key='gt', mask_key='mask', out_key='img', zero_value=0)
# inputs = img; gt -> gt_img and mask -> mask by MMagic's predefined keys (naming them in
# data_keys would store them under their raw names, e.g. 'gt', where no editor looks)
pack = dict(type='PackInputs', keys='img')

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
    load_gt,
    dict(type='SeededAlbumentations', keys=['gt'], transforms=place_train_augs),
    dict(type='GenerateInpaintingMask', preset='train'),
    masked_image,
    pack,
]

# bin/gen_mask_dataset.py: short side to eval_size (bicubic), then a square
eval_resize = [
    dict(type='Resize', keys=['gt'], scale=(eval_size, -1), keep_ratio=True,
         interpolation='bicubic', backend='pillow'),
    dict(type='Crop', keys=['gt'], crop_size=(eval_size, eval_size), random_crop=False),
]


def _eval_pipeline(preset):
    return [
        load_gt,
        *eval_resize,
        dict(type='GenerateInpaintingMask', preset=preset, seed=eval_mask_seed),
        masked_image,
        pack,
    ]


thin_pipeline = _eval_pipeline('thin_512')
thick_pipeline = _eval_pipeline('thick_512')
mask_file_pipeline = [load_gt, dict(type='LoadInpaintingMask'), masked_image, pack]
inference_pipeline = mask_file_pipeline

dataset_type = 'BasicImageDataset'
metainfo = dict(dataset_type='places2', task_name='inpainting')

train_dataloader = dict(
    num_workers=3,
    batch_size=4,  # per GPU (official: 8 GPUs x 4; the big model 8 x 15)
    persistent_workers=False,
    drop_last=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        metainfo=metainfo,
        data_root=data_root,
        data_prefix=dict(gt=train_prefix),
        recursive=True,
        pipeline=train_pipeline))

eval_loader_cfg = dict(
    num_workers=3,
    batch_size=1,
    persistent_workers=False,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False))


def _eval_dataset(prefix, pipeline):
    return dict(
        type=dataset_type,
        metainfo=metainfo,
        data_root=data_root,
        data_prefix=dict(gt=prefix),
        pipeline=pipeline,
        test_mode=True)


def _mask_file_dataset(folder):
    # <name>.png with <name>_mask000.png next to it (bin/gen_mask_dataset.py output)
    return dict(
        type=dataset_type,
        metainfo=metainfo,
        data_root=data_root,
        data_prefix=dict(gt=folder, mask=folder),
        search_key='mask',
        filename_tmpl=dict(mask='{}_mask000'),
        pipeline=mask_file_pipeline,
        test_mode=True)


def _metrics(prefix):
    return [
        dict(type='PairedFID', inception_path=fid_inception, prefix=prefix),
        dict(type='LPIPS', net='vgg', backbone_path=lpips_vgg_backbone, prefix=prefix),
        dict(type='SSIM', crop_border=0, prefix=prefix),
    ]


val_dataloader = dict(eval_loader_cfg, dataset=_eval_dataset(val_prefix, thick_pipeline))
val_evaluator = _metrics(f'{metric_prefix}-val')

test_dataloader = [
    dict(eval_loader_cfg, dataset=_eval_dataset(eval_prefix, thin_pipeline)),
    dict(eval_loader_cfg, dataset=_eval_dataset(eval_prefix, thick_pipeline)),
]
test_dataloader_mask_files = [
    dict(eval_loader_cfg, dataset=_mask_file_dataset('evaluation/random_thin_512')),
    dict(eval_loader_cfg, dataset=_mask_file_dataset('evaluation/random_thick_512')),
]
test_evaluator = [
    dict(type='Evaluator', metrics=_metrics(f'{metric_prefix}-thin512')),
    dict(type='Evaluator', metrics=_metrics(f'{metric_prefix}-thick512')),
]

val_cfg = dict(type='MultiValLoop')
test_cfg = dict(type='MultiTestLoop')
