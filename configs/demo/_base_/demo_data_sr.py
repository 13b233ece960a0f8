# Demo data of --task sr: tools/demo.py writes bicubic x4 pairs cut from scikit-image photos to
# <out-dir>/sr/data/{train,test}/{input,target} and sets the two data roots with --cfg-options.
_base_ = ['../../_base_/datasets/df2k_bicubic.py']

train_pipeline = [dict(step, gt_patch_size=64) if step['type'] == 'PairedRandomCrop' else step
                  for step in _base_.train_pipeline]
train_dataloader = dict(
    batch_size=8, num_workers=0,
    dataset=dict(data_root='demo_out/sr/data/train', data_prefix=dict(img='input', gt='target'),
                 pipeline=train_pipeline))
# The held-out photos, scored like the SISR benchmarks (Y channel, 4-pixel border), plus the
# colour error of the whole RGB image (diffir_mm/evaluation/metrics/colour_shift.py); no LPIPS
# (its AlexNet weights are a separate local file) and no validation.
test_dataloader = dict(
    _base_.eval_loader_cfg, _delete_=True, num_workers=0,
    dataset=dict(type='BasicImageDataset', data_root='demo_out/sr/data/test',
                 data_prefix=dict(img='input', gt='target'), pipeline=_base_.test_pipeline))
test_evaluator = [dict(type='PSNR', crop_border=4, convert_to='Y', prefix='demo'),
                  dict(type='SSIM', crop_border=4, convert_to='Y', prefix='demo'),
                  dict(type='ColourError', mask_key=None, prefix='demo')]
val_dataloader = val_evaluator = val_cfg = None
