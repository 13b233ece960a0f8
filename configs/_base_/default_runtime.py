# Runtime defaults for diffir_mm configs (same structure as MMagic's
# configs/_base_/default_runtime.py). Model configs inherit it with a
# relative path, e.g. ``_base_ = ['../_base_/default_runtime.py']``.
default_scope = 'mmagic'

# Our classes live in the ``diffir_mm`` package; importing ``diffir_mm.registration``
# registers them into mmagic's registries. Fail fast if it cannot be imported.
custom_imports = dict(imports=['diffir_mm.registration'], allow_failed_imports=False)

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=100),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(
        type='CheckpointHook',
        by_epoch=False,
        interval=5000,
        max_keep_ckpts=10,
        save_optimizer=True),
    # Checkpoints go to ``work_dir`` (no ``out_dir``), which is where
    # ``--resume`` looks for ``last_checkpoint``.
    sampler_seed=dict(type='DistSamplerSeedHook'),
    # Exact --resume: every rank's random states (and the model's progressive-crop RNG) go into
    # each checkpoint and come back on resume; validation does not perturb the training stream.
    # A default hook (merged key by key) so that configs setting `custom_hooks` keep it.
    random_state=dict(type='RandomStateCheckpointHook', isolate_val=True),
)

# Reproducible runs whose ranks differ, as the official `manual_seed: 0` + rank (every
# DiffIR-*/options/*.yml): mmengine seeds rank r with seed + r.
randomness = dict(seed=0, diff_rank_seed=True)

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=4),
    # tools/train.py and tools/test.py switch this to 'gloo' when no CUDA
    # device is available.
    dist_cfg=dict(backend='nccl'),
)

log_level = 'INFO'
log_processor = dict(type='LogProcessor', window_size=100, by_epoch=False)

vis_backends = [
    dict(type='LocalVisBackend'),
    dict(type='TensorboardVisBackend'),
]
visualizer = dict(
    type='ConcatImageVisualizer',
    vis_backends=vis_backends,
    fn_key='gt_path',
    img_keys=['gt_img', 'input', 'pred_img'],
    bgr2rgb=True)
# Images are only written when a visualization hook is enabled, e.g.
# custom_hooks = [dict(type='BasicVisualizationHook', interval=1)]
# (it saves one concatenated PNG per validation/test sample).

load_from = None
resume = False
# Mixed-precision training, read by tools/train.py: 'bf16' (no loss scaling; Ampere/Hopper GPUs)
# or 'fp16' (dynamic loss scaling), as `--amp [bf16|fp16]` (the flag wins); None: fp32.
amp = None
