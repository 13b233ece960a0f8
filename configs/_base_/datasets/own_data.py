# A user's own data, as `tools/prepare_data.py` writes it (docs/user_guides/own_data.md); the
# pieces the fine-tuning recipes (configs/diffir_*_finetune.py) build their dataloaders from.
#
#   prepare_data.py pairs LQ_DIR GT_DIR data/own_pairs  -> {train,val}/{input,target}
#   prepare_data.py images DIR data/own_images          -> train/, val/ (single images)
#
# The held-out split (val/) is the validation set during training and the test set of
# tools/test.py. Another folder: override the data_root of the dataloaders, e.g.
#   --cfg-options train_dataloader.dataset.data_root=D val_dataloader.dataset.data_root=D \
#                 test_dataloader.dataset.data_root=D
# (inpainting tests with two loaders: test_dataloader.0.dataset... and test_dataloader.1...).

own_pairs_root = 'data/own_pairs'
own_images_root = 'data/own_images'

own_train_loader = dict(
    num_workers=4,
    batch_size=4,
    persistent_workers=False,
    drop_last=True,
    sampler=dict(type='InfiniteSampler', shuffle=True))
own_eval_loader = dict(
    num_workers=2,
    batch_size=1,
    persistent_workers=False,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False))

own_pairs = dict(type='BasicImageDataset', metainfo=dict(dataset_type='own_pairs'),
                 data_root=own_pairs_root)
own_pairs_train = dict(own_pairs, data_prefix=dict(img='train/input', gt='train/target'))
own_pairs_val = dict(own_pairs, data_prefix=dict(img='val/input', gt='val/target'),
                     test_mode=True)
own_images = dict(type='BasicImageDataset', metainfo=dict(dataset_type='own_images'),
                  data_root=own_images_root)
own_images_train = dict(own_images, data_prefix=dict(gt='train'))
own_images_val = dict(own_images, data_prefix=dict(gt='val'), test_mode=True)

own_load_img = dict(type='LoadImageFromFile', key='img', color_type='color', channel_order='rgb',
                imdecode_backend='cv2')
own_load_gt = dict(type='LoadImageFromFile', key='gt', color_type='color', channel_order='rgb',
               imdecode_backend='cv2')
# the 8 flips / rotations
own_dihedral_augs = [
    dict(type='Flip', keys=['img', 'gt'], flip_ratio=0.5, direction='horizontal'),
    dict(type='Flip', keys=['img', 'gt'], flip_ratio=0.5, direction='vertical'),
    dict(type='RandomTransposeHW', keys=['img', 'gt'], transpose_ratio=0.5),
]

# x4 SR of single images: the LR input is the GT downscaled bicubically (Pillow, antialiased
# like MATLAB's imresize) after trimming the GT to a multiple of 4.
own_sr_scale = 4
own_bicubic_lr = dict(type='Resize', keys=['gt'], output_keys=['img'], scale=1 / own_sr_scale,
                  keep_ratio=True, interpolation='bicubic', backend='pillow')
own_bicubic_sr_eval_pipeline = [
    own_load_gt,
    dict(type='SetValues', dictionary=dict(scale=own_sr_scale)),
    dict(type='ModCrop', key='gt'),
    own_bicubic_lr,
    dict(type='PackInputs'),
]
own_bicubic_sr_eval_loader = dict(
    own_eval_loader, dataset=dict(own_images_val, pipeline=own_bicubic_sr_eval_pipeline))
