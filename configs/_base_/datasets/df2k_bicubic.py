# Bicubic SISR data of DiffIR-SRGAN ("GAN-based bicubic SISR", x4 default).
#
# Train: paired DF2K sub-images (HR and bicubic LR with the same file names),
#   GT patch 256, hflip + rotation (hflip x vflip x transpose), RGB.
# Val:  Urban100 and DIV2K100, PSNR on Y, crop 0 (official validation).
# Test: Set14, Urban100, Manga109, General100, DIV2K100 with the official
#   metric scripts' protocol: PSNR / SSIM on Y with crop 4, LPIPS with the
#   AlexNet backbone on the whole image, GT cropped to a multiple of the
#   scale (the official script crops it to a multiple of 4 for x4).
#
# x2: df2k_bicubic_x2.py sets `scale = 2` and re-derives what depends on it
# (see docs/user_guides/data_preparation.md).

scale = 4
gt_size = 256  # training GT patch (LQ patch = gt_size // scale)

data_root = 'data/DF2K'  # HR_sub/, LR_bicubic_sub/X<scale>/ (same names)
train_ann_file = ''  # e.g. 'meta_info_DF2K_sub_pair.txt'
benchmark_root = 'data/benchmark'  # <name>/HR, <name>/LRbicx<scale>
benchmark_names = ['Set14', 'Urban100', 'Manga109', 'General100', 'DIV2K100']
val_benchmark_names = ['Urban100', 'DIV2K100']

# Local LPIPS backbone weights (torchvision file; never downloaded).
lpips_alex_backbone = 'checkpoints/alexnet-owt-7be5be79.pth'

train_pipeline = [
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
    dict(type='SetValues', dictionary=dict(scale=scale)),
    dict(type='PairedRandomCrop', gt_patch_size=gt_size),
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
# GT is only used by the metrics; ModCrop trims it to a multiple of the
# scale so that it matches the SR output when the HR was not mod-cropped.
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
    dict(type='SetValues', dictionary=dict(scale=scale)),
    dict(type='ModCrop', key='gt'),
    dict(type='PackInputs'),
]
val_pipeline = test_pipeline
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
    num_workers=6,
    batch_size=8,  # per GPU (official: 8 x 8 GPUs)
    persistent_workers=False,
    drop_last=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        metainfo=dict(dataset_type='df2k', task_name='sisr'),
        data_root=data_root,
        ann_file=train_ann_file,
        data_prefix=dict(img=f'LR_bicubic_sub/X{scale}', gt='HR_sub'),
        pipeline=train_pipeline))

eval_loader_cfg = dict(
    num_workers=4,
    batch_size=1,
    persistent_workers=False,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False))

# One paired test set per benchmark name: <benchmark_root>/<name>/{HR,LR..}
benchmark_datasets = {
    name: dict(
        type=dataset_type,
        metainfo=dict(dataset_type=name.lower(), task_name='sisr'),
        data_root=f'{benchmark_root}/{name}',
        data_prefix=dict(img=f'LRbicx{scale}', gt='HR'),
        pipeline=test_pipeline)
    for name in benchmark_names
}

val_dataloader = [
    dict(eval_loader_cfg, dataset=benchmark_datasets[name])
    for name in val_benchmark_names
]
val_evaluator = [
    dict(
        type='Evaluator',
        metrics=[
            dict(type='PSNR', crop_border=0, convert_to='Y', prefix=name)
        ]) for name in val_benchmark_names
]

test_dataloader = [
    dict(eval_loader_cfg, dataset=benchmark_datasets[name])
    for name in benchmark_names
]
test_evaluator = [
    dict(
        type='Evaluator',
        metrics=[
            dict(type='PSNR', crop_border=4, convert_to='Y', prefix=name),
            dict(type='SSIM', crop_border=4, convert_to='Y', prefix=name),
            dict(
                type='LPIPS',
                net='alex',
                backbone_path=lpips_alex_backbone,
                gt_crop_multiple=scale,
                prefix=name),
        ]) for name in benchmark_names
]

val_cfg = dict(type='MultiValLoop')
test_cfg = dict(type='MultiTestLoop')
