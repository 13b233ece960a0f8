# Parts shared by the inpainting data of DiffIR-inpainting (LaMa's recipe): celebahq_inpaint.py
# and places_inpaint.py inherit them and build their loaders from them.
#
# Inputs: image * (1 - mask), mask = 1 in the holes; the editors build cat(inputs, mask).
# Metrics: FID (2048-d pytorch-fid Inception), LPIPS-VGG and SSIM on the blended output, each
#   evaluator adding its prefix.
# Mask files: the folders of LaMa's bin/gen_mask_dataset.py, <name>.png with <name>_mask000.png
#   next to it; the dataset lists the masks (search_key='mask') and finds each image.

eval_mask_seed = 2023  # generated evaluation masks depend only on this and the file name
fid_inception = 'checkpoints/pt_inception-2015-12-05-6726825d.pth'  # pytorch-fid weights
lpips_vgg_backbone = 'checkpoints/vgg16-397923af.pth'  # torchvision VGG16

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

# LaMa's mask folders: the dataset gives mask_path (search_key='mask', see mask_file_dataset)
mask_file_pipeline = [load_gt, dict(type='LoadInpaintingMask'), masked_image, pack]
# An image and its mask from files with the same stem (inferencers, own test sets)
inference_pipeline = mask_file_pipeline

dataset_type = 'BasicImageDataset'
# completed by each dataset with metainfo, data_root and data_prefix=dict(gt=..., mask=...)
mask_file_dataset = dict(
    type=dataset_type,
    search_key='mask',
    filename_tmpl=dict(mask='{}_mask000'),
    pipeline=mask_file_pipeline,
    test_mode=True)

# completed by each dataset with dataset=dict(...)
train_dataloader = dict(
    num_workers=3,
    batch_size=4,  # per GPU (official: 8 GPUs x 4; the big Places model 8 x 15)
    persistent_workers=False,
    drop_last=True,
    sampler=dict(type='InfiniteSampler', shuffle=True))

eval_loader_cfg = dict(
    num_workers=3,
    batch_size=1,
    persistent_workers=False,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False))

# completed with prefix=... by each evaluator
eval_metrics = [
    dict(type='PairedFID', inception_path=fid_inception),
    dict(type='LPIPS', net='vgg', backbone_path=lpips_vgg_backbone),
    dict(type='SSIM', crop_border=0),
]

val_cfg = dict(type='MultiValLoop')
test_cfg = dict(type='MultiTestLoop')
