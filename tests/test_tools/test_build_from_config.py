"""Build the DiffIR stage-2 generator from a config file via the registry."""
import os.path as osp

import torch
from helpers import RUNTIME_BASE, TINY_DIFFIR_S2, write_tiny_config

from diffir_mm.utils.warnings import quiet_mm_import_warnings


def test_runtime_base_matches_mmagic_structure():
    """configs/_base_/default_runtime.py has the documented fields."""
    from mmengine.config import Config

    cfg = Config.fromfile(RUNTIME_BASE, import_custom_modules=False)
    assert cfg.default_scope == 'mmagic'
    assert cfg.custom_imports == dict(
        imports=['diffir_mm'], allow_failed_imports=False)
    hooks = cfg.default_hooks
    assert hooks.timer.type == 'IterTimerHook'
    assert hooks.logger.type == 'LoggerHook' and hooks.logger.interval == 100
    assert hooks.param_scheduler.type == 'ParamSchedulerHook'
    assert hooks.sampler_seed.type == 'DistSamplerSeedHook'
    ckpt = hooks.checkpoint
    assert ckpt.type == 'CheckpointHook' and ckpt.by_epoch is False
    assert (ckpt.interval, ckpt.max_keep_ckpts) == (5000, 10)
    assert ckpt.save_optimizer is True and 'out_dir' not in ckpt
    assert cfg.env_cfg.dist_cfg.backend == 'nccl'
    assert cfg.log_processor.by_epoch is False
    assert cfg.visualizer.type == 'ConcatImageVisualizer'
    assert [b['type'] for b in cfg.visualizer.vis_backends
            ] == ['LocalVisBackend', 'TensorboardVisBackend']
    assert cfg.load_from is None and cfg.resume is False


def test_build_diffir_s2_from_config(tmp_path, tiny_pairs):
    """A config with custom_imports builds DiffIRS2Net through MODELS."""
    with quiet_mm_import_warnings():
        from mmagic.models import BaseEditModel
        from mmagic.registry import MODELS
        from mmengine.config import Config
        from mmengine.registry import init_default_scope

    cfg_file = write_tiny_config(str(tmp_path / 'tiny.py'), tiny_pairs)
    cfg = Config.fromfile(cfg_file)  # imports diffir_mm (custom_imports)
    assert cfg.custom_imports.imports == ['diffir_mm']
    assert cfg.custom_imports.allow_failed_imports is False
    assert cfg.default_scope == 'mmagic'
    assert osp.isabs(RUNTIME_BASE)
    init_default_scope(cfg.default_scope)

    generator = MODELS.build(cfg.model.generator)
    assert type(generator).__name__ == TINY_DIFFIR_S2['type']
    assert MODELS.get('DiffIRS2Net') is type(generator)
    generator.eval()
    lq = torch.rand(1, 3, 16, 24)
    with torch.no_grad():
        out = generator(lq)
    assert out.shape == lq.shape and torch.isfinite(out).all()

    model = MODELS.build(cfg.model)
    assert isinstance(model, BaseEditModel)
    assert type(model.generator).__name__ == 'DiffIRS2Net'
