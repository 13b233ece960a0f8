# Real-world (blind) SR data of DiffIR-RealSR (x4 by default).
#
# Train: GT-only DF2K (DIV2K + Flickr2K, multi-scale) + OST sub-images; the LQ
#   input is synthesised on the fly with the official second-order
#   Real-ESRGAN degradation (options/train_DiffIRS1_x4.yml), gt_size 256,
#   hflip on, rotation off. Two implementations of the same settings:
#   * `train_pipeline` (default) + `realsr_data_preprocessor` (the model's
#     data_preprocessor): as the official code, the loader only crops the GT
#     and draws the per-sample kernels; the degradation runs batched on the
#     device (per-batch resize / noise-type draws, float JPEG quality,
#     180-sample training-pair queue);
#   * `train_pipeline_cpu` / `train_pipeline_cpu_usm_source` (GAN V2): every
#     image degraded on the CPU workers (per-image draws, OpenCV JPEG, no
#     queue). Select it with
#       train_dataloader = dict(dataset=dict(pipeline=_base_.train_pipeline_cpu))
#     (the preprocessor then acts as MMagic's DataPreprocessor).
# Val:  S1 / S2: NTIRE2020-Track1 validation, PSNR-Y crop 0 (official
#   train_DiffIRS{1,2}_x4.yml). GAN stage: `gan_val_dataloader` /
#   `gan_val_evaluator`, NTIRE2020-Track1 + AIM2019-Track2 + RealSR-Canon
#   Test/4 with PSNR-Y and SSIM-Y crop 4 (official train_DiffIRS2_GAN_x4*.yml).
# Test: RealSR-Canon Test/<scale>, NTIRE2020-Track1 validation and
#   AIM2019-Track2 validation (official test_DiffIRS2_GAN_x4.yml) with the
#   official metric scripts' protocol: PSNR and SSIM on Y crop 4
#   (Metric/PSNR.py), LPIPS-VGG, DISTS (whole image) and NIQE.
# LR-only test: `lr_only_test_dataloader` / `lr_only_test_evaluator` (no GT).
#
# x2 / x1: realsr_df2k_ost_x2.py sets `scale` and re-derives what depends on
# it (the CPU pipelines read the scale from their SetValues step; test folders
# use Test/<scale>; x2/x1 validate on RealSR Canon as the official configs);
# realsr_df2k_ost_x1.py inherits it. See docs/user_guides/data_preparation.md.
#
# Weights of LPIPS/DISTS are read from local files (never downloaded):
# `lpips_vgg_backbone`, `dists_backbone`, `dists_weights` below.

scale = 4
gt_size = 256  # training GT patch (LQ patch = gt_size // scale)
crop_pad_size = 400  # GT crop (reflect-padded if smaller) before degradation

data_root = 'data/DF2K_OST'  # GT sub-images in data_root/GT_sub
train_ann_file = ''  # e.g. 'meta_info_DF2Kmultiscale+OST_sub.txt'
ntire2020_data_root = 'data/NTIRE2020-Track1'
aim2019_data_root = 'data/AIM2019-Track2'  # valid-input-noisy/, valid-gt-clean/
realsr_data_root = 'data/RealSR'  # RealSR(V3): Canon/Test/<scale>/{LR,HR}
lr_only_data_root = 'data/RealSR_LR'  # any folder of LR images

# Local metric weights (torchvision / DISTS release files).
lpips_vgg_backbone = 'checkpoints/vgg16-397923af.pth'
dists_backbone = 'checkpoints/vgg16-397923af.pth'
dists_weights = 'checkpoints/DISTS_weights.pt'

# ---------------------------------------------------------------------------
# official degradation settings (DiffIR-RealSR/options/train_DiffIRS1_x4.yml)
# ---------------------------------------------------------------------------
# kernel_list + sinc: the official `sinc_prob=0.1` is folded into the list
# (the other probabilities [0.45, 0.25, 0.12, 0.03, 0.12, 0.03] are x0.9).
blur_kernel_list = [
    'iso', 'aniso', 'generalized_iso', 'generalized_aniso', 'plateau_iso',
    'plateau_aniso', 'sinc'
]
blur_kernel_prob = [0.405, 0.225, 0.108, 0.027, 0.108, 0.027, 0.1]
blur_kernel_size = [7, 9, 11, 13, 15, 17, 19, 21]  # blur_kernel_size: 21
resize_opt = ['area', 'bilinear', 'bicubic']
resize_prob = [1 / 3., 1 / 3., 1 / 3.]

first_blur = dict(
    kernel_list=blur_kernel_list,
    kernel_prob=blur_kernel_prob,
    kernel_size=blur_kernel_size,
    sigma_x=[0.2, 3],  # blur_sigma
    sigma_y=[0.2, 3],
    rotate_angle=[-3.1416, 3.1416],
    beta_gaussian=[0.5, 4],  # betag_range
    beta_plateau=[1, 2])  # betap_range
first_resize = dict(
    reference='input',
    resize_mode_prob=[0.2, 0.7, 0.1],  # up, down, keep
    resize_scale=[0.15, 1.5],
    resize_opt=resize_opt,
    resize_prob=resize_prob)
first_noise = dict(
    noise_type=['gaussian', 'poisson'],
    noise_prob=[0.5, 0.5],  # gaussian_noise_prob
    gaussian_sigma=[1, 30],  # noise_range (0-255 units)
    poisson_scale=[0.05, 3],  # poisson_scale_range
    gray_noise_prob=0.4)
first_jpeg = dict(quality=[30, 95])  # jpeg_range

second_blur = dict(first_blur, sigma_x=[0.2, 1.5], sigma_y=[0.2, 1.5],
                   prob=0.8)  # blur_sigma2, second_blur_prob
second_resize = dict(
    reference='target',  # int(gt / scale * factor), as the official code
    resize_mode_prob=[0.3, 0.4, 0.3],
    resize_scale=[0.3, 1.2],
    resize_opt=resize_opt,
    resize_prob=resize_prob)
second_noise = dict(
    first_noise, gaussian_sigma=[1, 25], poisson_scale=[0.05, 2.5])
second_jpeg = dict(quality=[30, 95])  # jpeg_range2

final_resize = dict(
    reference='target', resize_opt=resize_opt, resize_prob=resize_prob)
final_sinc = dict(
    prob=0.8,  # final_sinc_prob
    kernel_list=['sinc'],
    kernel_prob=[1],
    kernel_size=blur_kernel_size,
    omega=[3.1416 / 3, 3.1416])

usm_gt = dict(
    type='UnsharpMasking',
    keys=['gt'],
    kernel_size=51,
    sigma=0,
    weight=0.5,
    threshold=10)

# Batched device-side degradation (default): the loader yields the 400x400
# GT and its three kernels; `realsr_data_preprocessor` degrades, crops to
# gt_size, queues and adds `gt_unsharp`. V2 (degrade the unsharp-masked GT):
# model.data_preprocessor.degrade_unsharp_gt=True.
# Both pipelines start by loading the GT and cropping/flipping it to 400x400.
gt_crop_steps = [
    dict(
        type='LoadImageFromFile',
        key='gt',
        color_type='color',
        channel_order='rgb',
        imdecode_backend='cv2'),
    dict(type='Flip', keys=['gt'], flip_ratio=0.5,
         direction='horizontal'),  # use_hflip: True, use_rot: False
    dict(type='PadToMinSize', keys=['gt'], min_size=crop_pad_size),
    dict(
        type='Crop',
        keys=['gt'],
        crop_size=(crop_pad_size, crop_pad_size),
        random_crop=True),
]
train_pipeline = [dict(step) for step in gt_crop_steps] + [
    dict(
        type='GenerateRealESRGANKernels',
        kernels=dict(
            kernel1=first_blur,
            kernel2=dict(second_blur, prob=1),  # second_blur_prob: per batch
            sinc_kernel=final_sinc)),
    dict(type='PackInputs', keys=[], data_keys=['kernel1', 'kernel2', 'sinc_kernel']),
]
realsr_data_preprocessor = dict(
    type='RealESRGANDegradationPreprocessor',
    scale=scale,
    gt_size=gt_size,
    first_resize=first_resize,
    first_noise=first_noise,
    first_jpeg=first_jpeg,
    second_blur_prob=second_blur['prob'],
    second_resize=second_resize,
    second_noise=second_noise,
    second_jpeg=second_jpeg,
    final_resize=final_resize,
    final_sinc_first_prob=0.5,
    queue_size=180,  # queue_size; the batch size per GPU must divide it
    unsharp={k: usm_gt[k] for k in ('kernel_size', 'sigma', 'weight', 'threshold')},
    degrade_unsharp_gt=False)

# CPU per-image degradation (option). The LQ `img` is synthesised from a copy
# of the GT (S1, S2 and GAN V1). For the GAN V2 recipe (degrade the
# unsharp-masked GT) use `train_pipeline_cpu_usm_source` (below) instead.
train_pipeline_cpu = [dict(step) for step in gt_crop_steps] + [
    dict(type='SetValues', dictionary=dict(scale=scale)),
    dict(type='CopyValues', src_keys=['gt'], dst_keys=['img']),
    # first-order degradation
    dict(type='RealESRGANRandomBlur', params=first_blur, keys=['img']),
    dict(type='RealESRGANRandomResize', params=first_resize, keys=['img']),
    dict(type='RealESRGANRandomNoise', params=first_noise, keys=['img']),
    dict(
        type='RandomJPEGCompression',
        params=first_jpeg,
        keys=['img'],
        bgr2rgb=True),  # the images are RGB: encode them as OpenCV expects
    # second-order degradation
    dict(type='RealESRGANRandomBlur', params=second_blur, keys=['img']),
    dict(type='RealESRGANRandomResize', params=second_resize, keys=['img']),
    dict(type='RealESRGANRandomNoise', params=second_noise, keys=['img']),
    # 50/50: [resize to gt/scale + final sinc] then JPEG, or the reverse
    dict(
        type='RandomChoice',
        transforms=[
            [
                dict(
                    type='RealESRGANRandomResize',
                    params=final_resize,
                    keys=['img']),
                dict(
                    type='RealESRGANRandomBlur',
                    params=final_sinc,
                    keys=['img']),
                dict(
                    type='RandomJPEGCompression',
                    params=second_jpeg,
                    keys=['img'],
                    bgr2rgb=True),
            ],
            [
                dict(
                    type='RandomJPEGCompression',
                    params=second_jpeg,
                    keys=['img'],
                    bgr2rgb=True),
                dict(
                    type='RealESRGANRandomResize',
                    params=final_resize,
                    keys=['img']),
                dict(
                    type='RealESRGANRandomBlur',
                    params=final_sinc,
                    keys=['img']),
            ],
        ],
        prob=[0.5, 0.5]),
    dict(type='Quantize', keys=['img']),  # clamp((x * 255).round())
    dict(type='PairedRandomCrop', gt_patch_size=gt_size),
    # `gt_unsharp` (USM of the cropped GT, as the official models compute it)
    # is packed into data_samples.gt_unsharp for the *_gt_usm losses.
    usm_gt,
    dict(type='PackInputs'),
]
# GAN V2: the same, but the LQ is synthesised from the unsharp-masked GT.
_copy = [step['type'] for step in train_pipeline_cpu].index('CopyValues')
train_pipeline_cpu_usm_source = train_pipeline_cpu[:_copy] + [
    usm_gt,
    dict(type='CopyValues', src_keys=['gt_unsharp'], dst_keys=['img']),
] + train_pipeline_cpu[_copy + 1:]
del _copy
# The settings above live on inside the training pipelines; dropping the helper
# names keeps the dumped config small (mmengine formats it with yapf at
# every start).
del blur_kernel_list, blur_kernel_prob, blur_kernel_size, resize_opt
del resize_prob, first_blur, first_resize, first_noise, first_jpeg
del second_blur, second_resize, second_noise, second_jpeg, final_resize
del final_sinc, gt_crop_steps

# Paired LR/HR evaluation: GT only reaches the metrics (never the network).
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
    dict(type='PackInputs'),
]
test_pipeline = val_pipeline
# LR only: no GT, no degradation (also used by inferencers).
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
    batch_size=9,  # per GPU; official: 9 x 8 GPUs
    persistent_workers=False,
    drop_last=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        metainfo=dict(dataset_type='df2k_ost', task_name='real_sr'),
        data_root=data_root,
        ann_file=train_ann_file,
        data_prefix=dict(gt='GT_sub'),
        pipeline=train_pipeline))

eval_loader_cfg = dict(
    num_workers=4,
    batch_size=1,
    persistent_workers=False,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False))

ntire2020_dataset = dict(
    type=dataset_type,
    metainfo=dict(dataset_type='ntire2020_track1', task_name='real_sr'),
    data_root=ntire2020_data_root,
    data_prefix=dict(img='track1-valid-input', gt='track1-valid-gt'),
    pipeline=test_pipeline)
aim2019_dataset = dict(
    type=dataset_type,
    metainfo=dict(dataset_type='aim2019_track2', task_name='real_sr'),
    data_root=aim2019_data_root,
    data_prefix=dict(img='valid-input-noisy', gt='valid-gt-clean'),
    pipeline=test_pipeline)
realsr_canon_dataset = dict(
    type=dataset_type,
    metainfo=dict(dataset_type='realsr_canon', task_name='real_sr'),
    data_root=realsr_data_root,
    data_prefix=dict(
        img=f'Canon/Test/{scale}/LR', gt=f'Canon/Test/{scale}/HR'),
    pipeline=test_pipeline)

val_dataloader = dict(eval_loader_cfg, dataset=dict(ntire2020_dataset,
                                                 pipeline=val_pipeline))
val_evaluator = [
    dict(type='PSNR', crop_border=0, convert_to='Y', prefix='NTIRE2020-T1'),
]

# GAN stage validation (official train_DiffIRS2_GAN_x4.yml, _V2.yml, finetune_*_V2.yml):
# three sets, PSNR-Y and SSIM-Y crop 4. Keys `<prefix>/PSNR`, `<prefix>/SSIM`.
gan_val_sets = dict([('NTIRE2020-T1', ntire2020_dataset), ('AIM2019-T2', aim2019_dataset),
                     ('RealSR-Canon', realsr_canon_dataset)])
gan_val_dataloader = [
    dict(eval_loader_cfg, dataset=dict(dataset, pipeline=val_pipeline))
    for dataset in gan_val_sets.values()
]
gan_val_evaluator = [
    dict(
        type='Evaluator',
        metrics=[
            dict(type='PSNR', crop_border=4, convert_to='Y', prefix=name),
            dict(type='SSIM', crop_border=4, convert_to='Y', prefix=name),
        ]) for name in gan_val_sets
]
del gan_val_sets
# x2 / x1 GAN stage (official train_DiffIRS2_GAN_x{2,1}*.yml, finetune_*_x{2,1}_V2.yml): RealSR
# Canon only, PSNR-Y crop 4, no SSIM; used by realsr_df2k_ost_x2.py / _x1.py.
canon_gan_val_evaluator = [
    dict(
        type='Evaluator',
        metrics=[
            dict(type='PSNR', crop_border=4, convert_to='Y', prefix='RealSR-Canon')
        ])
]


# official metric scripts: PSNR-Y and SSIM-Y crop 4 (Metric/PSNR.py), LPIPS-VGG
# and DISTS on the whole image, plus NIQE (no reference)
test_metrics = {
    name: [
        dict(type='PSNR', crop_border=4, convert_to='Y', prefix=name),
        dict(type='SSIM', crop_border=4, convert_to='Y', prefix=name),
        dict(
            type='LPIPS',
            net='vgg',
            backbone_path=lpips_vgg_backbone,
            prefix=name),
        dict(
            type='DISTS',
            backbone_path=dists_backbone,
            weights_path=dists_weights,
            prefix=name),
        dict(type='NoRefNIQE', convert_to='y', prefix=name),
    ]
    for name in ('RealSR-Canon', 'NTIRE2020-T1', 'AIM2019-T2')
}
realsr_canon_metrics = test_metrics['RealSR-Canon']

test_dataloader = [
    dict(eval_loader_cfg, dataset=realsr_canon_dataset),
    dict(eval_loader_cfg, dataset=ntire2020_dataset),
    dict(eval_loader_cfg, dataset=aim2019_dataset),
]
test_evaluator = [
    dict(type='Evaluator', metrics=test_metrics[name])
    for name in ('RealSR-Canon', 'NTIRE2020-T1', 'AIM2019-T2')
]
del test_metrics

# LR-only test set (only `img` in data_prefix, no GT): GT-free NIQE only.
# Use it in a test config with
#   test_dataloader = _base_.lr_only_test_dataloader
#   test_evaluator = _base_.lr_only_test_evaluator      # or metrics=None
# and save the outputs with the visualizer (docs/user_guides/data_preparation.md).
lr_only_test_dataloader = dict(
    eval_loader_cfg,
    dataset=dict(
        type=dataset_type,
        metainfo=dict(dataset_type='real_lr', task_name='real_sr'),
        data_root=lr_only_data_root,
        data_prefix=dict(img=''),
        pipeline=inference_pipeline))
lr_only_test_evaluator = dict(
    type='Evaluator',
    metrics=[dict(type='NoRefNIQE', convert_to='y', prefix='RealLR')])
# No quality metric at all, only saved results. (mmagic's `metrics=None`
# cannot run: MultiTestLoop fails on it and would not run the model.)
lr_only_no_metric_evaluator = dict(
    type='Evaluator', metrics=[dict(type='ImageCount', prefix='RealLR')])

val_cfg = dict(type='MultiValLoop')
test_cfg = dict(type='MultiTestLoop')
