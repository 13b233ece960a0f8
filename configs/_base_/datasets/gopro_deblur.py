# Motion deblurring data of DiffIR-demotionblur (GoPro -> GoPro / HIDE).
#
# Train: GoPro train pairs cut into 512x512 crops (overlap 256, as the
#   official generate_patches_gopro.py) in data_root/train/{input,target};
#   random flips / rotations (the 8 dihedral transforms, like the official
#   `geometric_augs`), RGB. The official progressive patch schedule
#   (patches 192..512 with mini-batches 8..1) sub-crops these 512x512 pairs
#   inside the model / a hook, not here.
# Val:  the 256x256 centre crop of every GoPro test pair (cropped on the fly
#   from data_root/test), PSNR on RGB, crop 0.
# Test: full GoPro test (1111 frames) and HIDE (2025 frames), PSNR and SSIM
#   on RGB, crop 0, plus `MatlabSSIM` (the paper's SSIM: MATLAB `ssim` of the
#   uint8 RGB images as one 3-D volume, official evaluate_gopro_hide.m).

data_root = 'data/GoPro'  # train/{input,target}, test/{input,target}
hide_data_root = 'data/HIDE'  # test/{input,target}
gt_size = 512  # training crop (the train crops are already 512x512)
val_crop_size = 256

# Training loads name and skip unreadable images (CheckedLoadImageFromFile; strict:
# on_bad_file='error', see docs/advanced_guides/reliability.md); evaluation loads keep
# MMagic's LoadImageFromFile.
train_pipeline = [
    dict(
        type='CheckedLoadImageFromFile',
        key='img',
        color_type='color',
        channel_order='rgb',
        imdecode_backend='cv2'),
    dict(
        type='CheckedLoadImageFromFile',
        key='gt',
        color_type='color',
        channel_order='rgb',
        imdecode_backend='cv2'),
    dict(type='SetValues', dictionary=dict(scale=1)),
    dict(type='PairedRandomCrop', gt_patch_size=gt_size),
    # hflip x vflip x transpose = the 8 flips/rotations of `geometric_augs`
    dict(
        type='Flip',
        keys=['img', 'gt'],
        flip_ratio=0.5,
        direction='horizontal'),
    dict(
        type='Flip', keys=['img', 'gt'], flip_ratio=0.5,
        direction='vertical'),
    dict(type='RandomTransposeHW', keys=['img', 'gt'], transpose_ratio=0.5),
    dict(type='PackInputs'),
]
val_pipeline = [
    dict(
        type='LoadImageFromFile',
        key='img',
        color_type='color',
        channel_order='rgb',
        imdecode_backend='cv2'),
    dict(
        type='LoadImageFromFile',
        key='gt',
        color_type='color',
        channel_order='rgb',
        imdecode_backend='cv2'),
    dict(
        type='Crop',
        keys=['img', 'gt'],
        crop_size=(val_crop_size, val_crop_size),
        random_crop=False),  # centre crop
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(
        type='LoadImageFromFile',
        key='img',
        color_type='color',
        channel_order='rgb',
        imdecode_backend='cv2'),
    dict(
        type='LoadImageFromFile',
        key='gt',
        color_type='color',
        channel_order='rgb',
        imdecode_backend='cv2'),
    dict(type='PackInputs'),
]
# Blurry input only (no GT): inferencers and LR-only testing.
inference_pipeline = [
    dict(
        type='LoadImageFromFile',
        key='img',
        color_type='color',
        channel_order='rgb',
        imdecode_backend='cv2'),
    dict(type='PackInputs'),
]

dataset_type = 'BasicImageDataset'

train_dataloader = dict(
    num_workers=12,
    batch_size=8,  # per GPU (official: 8 GPUs; progressive mini-batches)
    persistent_workers=False,
    drop_last=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        metainfo=dict(dataset_type='gopro', task_name='deblurring'),
        data_root=data_root,
        data_prefix=dict(img='train/input', gt='train/target'),
        pipeline=train_pipeline))

eval_loader_cfg = dict(
    num_workers=4,
    batch_size=1,
    persistent_workers=False,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False))

gopro_test_dataset = dict(
    type=dataset_type,
    metainfo=dict(dataset_type='gopro', task_name='deblurring'),
    data_root=data_root,
    data_prefix=dict(img='test/input', gt='test/target'),
    pipeline=test_pipeline)
hide_test_dataset = dict(
    type=dataset_type,
    metainfo=dict(dataset_type='hide', task_name='deblurring'),
    data_root=hide_data_root,
    data_prefix=dict(img='test/input', gt='test/target'),
    pipeline=test_pipeline)

val_dataloader = dict(
    eval_loader_cfg, dataset=dict(gopro_test_dataset, pipeline=val_pipeline))
val_evaluator = [
    dict(type='PSNR', crop_border=0, prefix='GoPro'),  # key GoPro/PSNR
]

test_dataloader = [
    dict(eval_loader_cfg, dataset=gopro_test_dataset),
    dict(eval_loader_cfg, dataset=hide_test_dataset),
]
# `SSIM` is MMagic's (mean of three per-channel SSIMs); `MatlabSSIM` is the paper's number:
# MATLAB `ssim` on the uint8 RGB results as one 3-D volume (official evaluate_gopro_hide.m).
# Compare `GoPro/MatlabSSIM` / `HIDE/MatlabSSIM` with the paper's table.
test_evaluator = [
    dict(
        type='Evaluator',
        metrics=[
            dict(type='PSNR', crop_border=0, prefix='GoPro'),
            dict(type='SSIM', crop_border=0, prefix='GoPro'),
            dict(type='MatlabSSIM', prefix='GoPro'),
        ]),
    dict(
        type='Evaluator',
        metrics=[
            dict(type='PSNR', crop_border=0, prefix='HIDE'),
            dict(type='SSIM', crop_border=0, prefix='HIDE'),
            dict(type='MatlabSSIM', prefix='HIDE'),
        ]),
]

val_cfg = dict(type='MultiValLoop')
test_cfg = dict(type='MultiTestLoop')
