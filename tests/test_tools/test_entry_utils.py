"""Unit tests of the helpers behind tools/train.py and tools/test.py."""
import importlib.util
import os.path as osp
import random
import warnings

import numpy as np
import pytest
import torch
from helpers import TOOLS_DIR

from diffir_mm.utils.warnings import (noisy_module_regex,
                                      quiet_mm_import_warnings)


def _load_tool(name: str):
    """Import ``tools/<name>.py`` as a module (without running main)."""
    spec = importlib.util.spec_from_file_location(
        f'_diffir_tools_{name}', osp.join(TOOLS_DIR, f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _warn_from(module: str, category=FutureWarning) -> None:
    """Emit a warning attributed to ``module``."""
    warnings.warn_explicit(
        'noise', category, filename=f'{module}.py', lineno=1, module=module)


def test_quiet_mm_import_warnings_is_scoped():
    """Only third-party modules and the three categories are silenced."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        with quiet_mm_import_warnings():
            _warn_from('mmagic.models.losses.gan_loss')
            _warn_from('diffusers.utils', UserWarning)
            _warn_from('mmengine.utils', DeprecationWarning)
            _warn_from('diffir_mm.models')  # ours: kept
            _warn_from('mmagicfoo')  # not a listed package: kept
            _warn_from('mmcv.ops', RuntimeWarning)  # other category: kept
        _warn_from('mmagic.models')  # filters restored after the block
    modules = sorted(str(w.filename) for w in caught)
    assert modules == [
        'diffir_mm.models.py', 'mmagic.models.py', 'mmagicfoo.py',
        'mmcv.ops.py'
    ]
    assert noisy_module_regex(['a.b']) == r'(?:a\.b)(?:\..*)?$'


def test_rng_state_roundtrip_is_weights_only_safe(tmp_path):
    """RNG states survive torch.save/torch.load(weights_only=True)."""
    from diffir_mm.engine.random_state_hook import get_rng_state, set_rng_state

    state = get_rng_state()
    ref = (random.random(), np.random.rand(3), torch.rand(3))
    path = tmp_path / 'rng.pth'
    torch.save(dict(rng_state=state), path)
    loaded = torch.load(path, weights_only=True)['rng_state']
    set_rng_state(loaded)
    again = (random.random(), np.random.rand(3), torch.rand(3))
    assert ref[0] == again[0]
    assert np.array_equal(ref[1], again[1])
    assert torch.equal(ref[2], again[2])


def test_random_state_hook_isolates_validation():
    """Validation between two training steps does not move the stream."""
    from diffir_mm.engine.random_state_hook import RandomStateCheckpointHook

    hook = RandomStateCheckpointHook()
    torch.manual_seed(0)
    expected = torch.rand(2)
    torch.manual_seed(0)
    hook.before_val(None)
    torch.rand(100), np.random.rand(7), random.random()  # "validation"
    hook.after_val(None)
    assert torch.equal(torch.rand(2), expected)


@pytest.mark.skipif(torch.cuda.is_available(), reason='CPU-only behaviour')
def test_prepare_cpu_distributed(monkeypatch):
    """nccl -> gloo, device_ids=None, process group initialised once."""
    from mmengine.config import Config

    import diffir_mm.utils.dist as dist_utils

    calls, logs = [], []
    monkeypatch.setattr(dist_utils, '_init_process_group',
                        lambda *args: calls.append(args))
    cfg = Config(dict(env_cfg=dict(dist_cfg=dict(backend='nccl'))))
    assert not dist_utils.prepare_cpu_distributed(cfg, 'none', logs.append)
    assert cfg.env_cfg.dist_cfg.backend == 'nccl' and not calls
    assert dist_utils.prepare_cpu_distributed(cfg, 'pytorch', logs.append)
    assert cfg.env_cfg.dist_cfg.backend == 'gloo'
    assert cfg.model_wrapper_cfg.type == 'MMDistributedDataParallel'
    assert cfg.model_wrapper_cfg.device_ids is None
    assert len(logs) == 1 and 'gloo' in logs[0]
    assert calls and calls[0][:2] == ('pytorch', 'gloo')

    cfg = Config(
        dict(model_wrapper_cfg=dict(type='MMSeparateDistributedDataParallel')))
    dist_utils.prepare_cpu_distributed(cfg, 'pytorch', logs.append)
    assert cfg.model_wrapper_cfg.device_ids is None
    assert cfg.env_cfg.dist_cfg.backend == 'gloo'


def test_train_cli_flags_and_helpers():
    """CLI parity with MMagic, --auto-scale-lr and --amp config edits."""
    from mmengine.config import Config

    train = _load_tool('train')
    args = train.parse_args([
        'cfg.py', '--work-dir', 'w', '--resume', '--amp', '--auto-scale-lr',
        '--cfg-options', 'a.b=1', '--launcher', 'pytorch', '--local-rank', '1'
    ])
    assert (args.config, args.work_dir, args.resume,
            args.amp) == ('cfg.py', 'w', True, True)
    assert args.auto_scale_lr and args.launcher == 'pytorch'
    assert args.cfg_options == {'a.b': 1} and args.local_rank == 1
    assert train.parse_args(['c.py', '--local_rank', '3']).local_rank == 3

    cfg = Config(dict(auto_scale_lr=dict(enable=False, base_batch_size=8)))
    train.enable_auto_scale_lr(cfg)
    assert cfg.auto_scale_lr.enable is True
    with pytest.raises(RuntimeError, match='base_batch_size'):
        train.enable_auto_scale_lr(Config(dict()))

    cfg = Config(dict(optim_wrapper=dict(type='OptimWrapper')))
    train.enable_amp(cfg, print)
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper'
    assert cfg.optim_wrapper.loss_scale == 'dynamic'
    cfg = Config(
        dict(
            optim_wrapper=dict(
                constructor='MultiOptimWrapperConstructor',
                generator=dict(type='OptimWrapper'),
                discriminator=dict(type='OptimWrapper'))))
    train.enable_amp(cfg, print)
    assert cfg.optim_wrapper.generator.type == 'AmpOptimWrapper'
    assert cfg.optim_wrapper.discriminator.type == 'AmpOptimWrapper'

    test = _load_tool('test')
    args = test.parse_args(
        ['c.py', 'ck.pth', '--out', 'm.json', '--work-dir', 'w'])
    assert (args.checkpoint, args.out, args.launcher) == ('ck.pth', 'm.json',
                                                          'none')
