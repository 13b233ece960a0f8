# Demo data of --task inpaint: tools/demo.py writes 128 px crops of scikit-image photos to
# <out-dir>/inpaint/data/train/target and the held-out photos with one fixed mask each to
# <out-dir>/inpaint/data/test/{target,mask} (<name>.png, <name>_mask000.png), and sets the two
# data roots with --cfg-options. The CelebA-HQ recipe's pipeline pieces, with LaMa's thin masks
# (the 256 px protocol preset on the training crops; the held-out photos, 170-600 px, get the
# 512 px one, the evaluation protocol's thin masks: strokes of about the same relative width).
# Thin, not thick: on thick_512 masks (holes up to 250 px wide, twice a training crop) the
# demo's network darkens the hole centres and Telea wins by more (measured: docs/get_started.md).
_base_ = ['../../_base_/datasets/celebahq_inpaint.py']

# Demo change: a random 96 px crop of each 128 px training image (the recipe: no crop). An
# iteration then costs 0.56-0.58x one on 128 px (measured, both stages), so the
# 12-minute budget buys 1.7x the iterations; the strokes (at most 10 px wide) still fit.
train_crop = 96
train_pipeline = [
    _base_.load_gt,
    dict(type='Crop', keys=['gt'], crop_size=(train_crop, train_crop), random_crop=True),
    dict(type='GenerateInpaintingMask', preset='thin_256'),  # drawn anew for every sample
    _base_.masked_image,
    _base_.pack,
]
train_dataloader = dict(
    batch_size=4, num_workers=0,
    dataset=dict(data_root='demo_out/inpaint/data/train', data_prefix=dict(gt='target'),
                 pipeline=train_pipeline))
# The held-out photos with the masks tools/demo.py wrote; PSNR / SSIM of the blended output on
# the whole image (the known pixels are the input's) and its colour error inside the holes (mean
# absolute per-channel shift of the mean colour, diffir_mm/evaluation/metrics/colour_shift.py);
# no FID / LPIPS (their backbone weights are separate local files) and no validation.
test_dataloader = dict(
    _base_.eval_loader_cfg, _delete_=True, num_workers=0,
    dataset=dict(type='BasicImageDataset', data_root='demo_out/inpaint/data/test',
                 data_prefix=dict(gt='target', mask='mask'), search_key='gt',
                 filename_tmpl=dict(mask='{}_mask000'), pipeline=_base_.mask_file_pipeline,
                 test_mode=True))
test_evaluator = [dict(type='PSNR', crop_border=0, prefix='demo'),
                  dict(type='SSIM', crop_border=0, prefix='demo'),
                  dict(type='ColourError', prefix='demo')]
val_dataloader = val_evaluator = val_cfg = None
