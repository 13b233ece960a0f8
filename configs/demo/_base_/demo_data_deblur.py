# Demo data of --task deblur: tools/demo.py writes photos blurred with random motion kernels to
# <out-dir>/deblur/data/{train,test}/{input,target} and sets the two data roots with --cfg-options.
_base_ = ['../../_base_/datasets/gopro_deblur.py']

# Fixed 48 px patches, 4 per batch (a stage-1 iteration costs about an SR one), no progressive
# patch schedule.
train_pipeline = [dict(step, gt_patch_size=48) if step['type'] == 'PairedRandomCrop' else step
                  for step in _base_.train_pipeline]
train_dataloader = dict(
    batch_size=4, num_workers=0,
    dataset=dict(data_root='demo_out/deblur/data/train', pipeline=train_pipeline,
                 data_prefix=dict(img='input', gt='target')))
# The held-out photos, scored like GoPro (RGB, no border), plus the colour error of the whole
# image (diffir_mm/evaluation/metrics/colour_shift.py); no validation.
test_dataloader = dict(
    _base_.eval_loader_cfg, _delete_=True, num_workers=0,
    dataset=dict(type='BasicImageDataset', data_root='demo_out/deblur/data/test',
                 data_prefix=dict(img='input', gt='target'), pipeline=_base_.test_pipeline))
test_evaluator = [dict(type='PSNR', crop_border=0, prefix='demo'),
                  dict(type='SSIM', crop_border=0, prefix='demo'),
                  dict(type='ColourError', mask_key=None, prefix='demo')]
val_dataloader = val_evaluator = val_cfg = None
