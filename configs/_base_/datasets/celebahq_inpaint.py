# CelebA-HQ 256 inpainting data of DiffIR-inpainting (LaMa's recipe; DiffIR method notes, 2.5, 3).
#
# Split (LaMa fetch_data/celebahq_dataset_prepare.sh): the 28,000 images of train_shuffled.flist
# are shuffled, the first 2,000 become val_source_256 (the protocol's test images), the other
# 26,000 train_256; val_shuffled.flist gives visual_test_source_256. Images are 256x256.
# Train: no augmentation (official `no_augs`), no crop; LaMa's training mask mix
#   (abl-04-256-mh-dist-celeba: strokes + boxes), drawn anew per sample.
# Val (during training): val_source_256 with thick_256 masks seeded by file name.
# Test: the thin ("narrow") and thick ("wide") 256 protocol (FID 2048-d, LPIPS-VGG, SSIM on the
#   blended output). Default: masks generated from `eval_mask_seed` (the same masks in every
#   run); `test_dataloader_mask_files` reads LaMa's generated folders
#   (val_256/random_{thin,thick}_256: <name>.png + <name>_mask000.png) instead.
# Padding (LaMa pad_out_to_modulo 8 + unpadding): the DiffIR networks pad every input to a
#   multiple of 8 and crop the output back, so images of any size can be evaluated.

data_root = 'data/celeba-hq-dataset'
train_prefix = 'train_256'
eval_prefix = 'val_source_256'
eval_mask_seed = 2023  # generated evaluation masks depend only on this and the file name
fid_inception = 'checkpoints/pt_inception-2015-12-05-6726825d.pth'  # pytorch-fid weights
lpips_vgg_backbone = 'checkpoints/vgg16-397923af.pth'  # torchvision VGG16
metric_prefix = 'CelebAHQ'

load_gt = dict(
    type='LoadImageFromFile',
    key='gt',
    color_type='color',
    channel_order='rgb',
    imdecode_backend='cv2')
# inputs = image * (1 - mask); the editor builds cat(inputs, mask) (see the inpainting editors)
masked_image = dict(
    type='GetMaskedImage', img_key='gt', mask_key='mask', out_key='img', zero_value=0)
# inputs = img; gt -> gt_img and mask -> mask by MMagic's predefined keys (naming them in
# data_keys would store them under their raw names, e.g. 'gt', where no editor looks)
pack = dict(type='PackInputs', keys='img')

train_pipeline = [
    load_gt,
    dict(type='GenerateInpaintingMask', preset='train'),
    masked_image,
    pack,
]


def _eval_pipeline(preset):
    return [
        load_gt,
        dict(type='GenerateInpaintingMask', preset=preset, seed=eval_mask_seed),
        masked_image,
        pack,
    ]


thin_pipeline = _eval_pipeline('thin_256')
thick_pipeline = _eval_pipeline('thick_256')
# LaMa's mask folders: the dataset gives mask_path (search_key='mask', see below)
mask_file_pipeline = [load_gt, dict(type='LoadInpaintingMask'), masked_image, pack]
# An image and its mask from files with the same stem (inferencers, own test sets)
inference_pipeline = mask_file_pipeline

dataset_type = 'BasicImageDataset'
metainfo = dict(dataset_type='celeba-hq', task_name='inpainting')

train_dataloader = dict(
    num_workers=3,
    batch_size=4,  # per GPU (official: 8 GPUs x 4)
    persistent_workers=False,
    drop_last=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        metainfo=metainfo,
        data_root=data_root,
        data_prefix=dict(gt=train_prefix),
        pipeline=train_pipeline))

eval_loader_cfg = dict(
    num_workers=3,
    batch_size=1,
    persistent_workers=False,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False))


def _eval_dataset(pipeline):
    return dict(
        type=dataset_type,
        metainfo=metainfo,
        data_root=data_root,
        data_prefix=dict(gt=eval_prefix),
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


val_dataloader = dict(eval_loader_cfg, dataset=_eval_dataset(thick_pipeline))
val_evaluator = _metrics(f'{metric_prefix}-val')

test_dataloader = [
    dict(eval_loader_cfg, dataset=_eval_dataset(thin_pipeline)),
    dict(eval_loader_cfg, dataset=_eval_dataset(thick_pipeline)),
]
test_dataloader_mask_files = [
    dict(eval_loader_cfg, dataset=_mask_file_dataset('val_256/random_thin_256')),
    dict(eval_loader_cfg, dataset=_mask_file_dataset('val_256/random_thick_256')),
]
test_evaluator = [
    dict(type='Evaluator', metrics=_metrics(f'{metric_prefix}-thin256')),
    dict(type='Evaluator', metrics=_metrics(f'{metric_prefix}-thick256')),
]

val_cfg = dict(type='MultiValLoop')
test_cfg = dict(type='MultiTestLoop')
