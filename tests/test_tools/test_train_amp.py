"""bf16 mixed-precision training: ``tools/train.py --amp [bf16|fp16]`` and the config key ``amp``.

* the option layer: ``--amp`` alone is bf16 (``AmpOptimWrapper``, ``dtype='bfloat16'``, loss
  scaling off), ``--amp fp16`` MMagic's float16 with dynamic loss scaling, the config key ``amp``
  the same without the flag; every optimizer wrapper of every recipe is converted, the several
  wrappers of the GAN and inpainting editors included;
* the numerics, on the CPU: one training step of a tiny stage-2 (fused training forward, with and
  without ``with_cp``), GAN and inpainting recipe through mmengine's real ``AmpOptimWrapper`` in
  bf16 (CPU autocast) against the same step in fp32: every loss within
  :data:`LOSS_RTOL` and the gradient of every network within :data:`GRAD_RTOL` (relative L2
  error), the tolerances ``docs/user_guides/train_test.md`` documents.
"""
import copy
import glob
import logging
import os.path as osp
from unittest import mock

import pytest
import torch
from mmengine.config import Config
from mmengine.logging import MessageHub
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope

import diffir_mm.registration  # noqa: F401  (registers)
from diffir_mm.utils.config_errors import UserConfigError
from helpers import REPO_ROOT, import_tool, tiny_recipe
from mmagic.registry import MODELS
from mmagic.structures import DataSample

init_default_scope('mmagic')
train = import_tool('train')

#: Relative error of every loss term, bf16 autocast against fp32 (measured: at most 1.1e-3).
LOSS_RTOL = 1e-2
#: Relative L2 error of each network's gradient, bf16 autocast against fp32 (measured: at most
#: 3.2e-2, the GAN discriminator; generators 4e-3 to 1.4e-2); also the tolerance of the loss
#: terms made of gradients (the R1 penalty, a squared gradient norm: measured 1.4e-2).
GRAD_RTOL = 5e-2
GRADIENT_LOSSES = ('loss_r1', )
RECIPES = sorted(osp.splitext(osp.basename(p))[0]
                 for p in glob.glob(osp.join(REPO_ROOT, 'configs', '*.py')))


def _log(*args, **kwargs) -> None:
    pass


def _wrappers(cfg: Config) -> dict:
    ow = cfg.optim_wrapper
    if ow.get('constructor', 'DefaultOptimWrapperConstructor') == \
            'DefaultOptimWrapperConstructor':
        return {'': ow}
    return {k: v for k, v in ow.items() if isinstance(v, dict) and 'type' in v}


def test_amp_flag_and_config_key_choose_the_precision():
    parse = train.parse_args
    assert parse(['c.py']).amp is None
    assert parse(['c.py', '--amp']).amp == 'bf16'
    assert parse(['c.py', '--amp', 'fp16']).amp == 'fp16'
    assert parse(['c.py', '--amp', '--resume']).amp == 'bf16'
    with pytest.raises(SystemExit):
        parse(['c.py', '--amp', 'int8'])
    assert train.amp_precision(Config(dict()), None) is None
    assert train.amp_precision(Config(dict(amp='bfloat16')), None) == 'bf16'
    assert train.amp_precision(Config(dict(amp='fp16')), None) == 'fp16'
    assert train.amp_precision(Config(dict(amp='fp16')), 'bf16') == 'bf16'  # the flag wins
    with pytest.raises(UserConfigError, match="amp='bf16'"):
        train.amp_precision(Config(dict(amp='half-ish')), None)
    runtime = Config.fromfile(osp.join(REPO_ROOT, 'configs', '_base_', 'default_runtime.py'))
    assert runtime.amp is None


@pytest.mark.parametrize('precision, dtype, loss_scale',
                         [('bf16', 'bfloat16', dict(enabled=False)),
                          ('fp16', 'float16', 'dynamic')])
def test_every_recipe_wrapper_becomes_amp(precision, dtype, loss_scale):
    for name in RECIPES:
        cfg = Config.fromfile(osp.join(REPO_ROOT, 'configs', f'{name}.py'))
        before = _wrappers(cfg)
        train.enable_amp(cfg, _log, precision)
        after = _wrappers(cfg)
        assert set(after) == set(before) and after, name
        several = name.endswith(('_gan', '_gan_v2', '_gan_v2_finetune')) or '_inpaint_' in name
        assert len(after) >= (2 if several else 1), name
        for key, wrapper in after.items():
            assert (wrapper.type, wrapper.dtype, wrapper.loss_scale) == \
                ('AmpOptimWrapper', dtype, loss_scale), (name, key)


def test_amp_refuses_other_wrappers_and_keeps_configured_amp():
    cfg = Config(dict(optim_wrapper=dict(type='GuardedOptimWrapper')))
    with pytest.raises(UserConfigError, match='optim_wrapper.type'):
        train.enable_amp(cfg, _log)
    cfg = Config(dict(optim_wrapper=dict(type='AmpOptimWrapper', dtype='float16')))
    logged = []
    train.enable_amp(cfg, lambda msg, **kw: logged.append((msg, kw.get('level'))))
    assert cfg.optim_wrapper.dtype == 'float16' and logged[0][1] == logging.WARNING


def test_amp_without_cuda_stops_before_training(tmp_path):
    cfg = tiny_recipe('diffir_deblur_s1')
    args = train.parse_args(['diffir_deblur_s1.py', '--amp', '--work-dir', str(tmp_path)])
    with mock.patch('torch.cuda.is_available', lambda: False), \
            pytest.raises(UserConfigError, match='needs a CUDA device'):
        train.train(cfg, args)
    assert not any(tmp_path.iterdir())


# ----------------------------------------------------------------------------- numerics
def _batch(kind: str, batch: int = 2) -> dict:
    """Loader batches of 0-255 images: deblurring 32², SR x4 8² -> 32², inpainting 32²."""
    g = torch.Generator().manual_seed(0)
    inputs, samples = [], []
    for i in range(batch):
        if kind == 'inpaint':
            gt = torch.randint(0, 256, (3, 32, 32), generator=g).float()
            mask = torch.zeros(1, 32, 32)
            mask[:, 4 + 3 * i:16 + 3 * i, 6:18] = 1
            inputs.append(gt * (1 - mask))
            sample = DataSample(gt_img=gt, mask=mask)
        else:
            gt = torch.randint(0, 256, (3, 32, 32), generator=g).float()
            lq = gt if kind == 'deblur' else torch.nn.functional.avg_pool2d(gt[None], 4)[0]
            inputs.append(lq.roll(1, -1) if kind == 'deblur' else lq)
            sample = DataSample(gt_img=gt)
        sample.set_metainfo(dict(img_channel_order='rgb', gt_channel_order='rgb'))
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def _train_step(model, cfg: Config, kind: str, precision=None):
    """Losses and per-parameter gradients of one training step (learning rates 0)."""
    cfg = copy.deepcopy(cfg)
    if precision:
        train.enable_amp(cfg, _log, precision)
    # mmengine's AmpOptimWrapper refuses to be built without a GPU; its autocast
    # (mmengine.runner.amp.autocast) runs bf16 on the CPU
    with mock.patch('mmengine.optim.optimizer.amp_optimizer_wrapper.is_cuda_available',
                    lambda: True):
        optim = build_optim_wrapper(model, cfg.optim_wrapper)
    for wrapper in (optim.values() if hasattr(optim, 'values') else [optim]):
        assert type(wrapper).__name__ == ('AmpOptimWrapper' if precision else 'OptimWrapper')
        for group in wrapper.optimizer.param_groups:
            group['lr'] = 0.0  # both runs see the same weights in every phase of the step
    grads = {}
    for name, p in model.named_parameters():
        if p.requires_grad:
            p.register_post_accumulate_grad_hook(
                lambda p, name=name: grads.__setitem__(name, p.grad.detach().clone()))
    hub = MessageHub.get_current_instance()
    hub.update_info('iter', 5)
    model.train()
    log = model.train_step(_batch(kind), optim)
    return {k: float(v.detach()) for k, v in log.items()}, grads


def _network_errors(ref: dict, test: dict) -> dict:
    """Relative L2 error of the gradient of each network (generator parts, discriminator)."""
    assert set(ref) == set(test)
    parts = {}
    for name in ref:
        keys = name.split('.')
        part = '.'.join(keys[:2]) if keys[0] == 'generator' else keys[0]
        parts.setdefault(part, []).append(name)
    errors = {}
    for part, names in parts.items():
        a = torch.cat([ref[n].flatten() for n in names])
        b = torch.cat([test[n].flatten() for n in names])
        errors[part] = float((a - b).norm() / a.norm())
    return errors


CASES = {
    # stage 2 joint phase: fused DynamicTransformerBlock.forward_train, OptimWrapperDict
    'deblur_s2': ('diffir_deblur_s2', 'deblur', dict(train_cfg=dict(encoder_iters=0))),
    # generator + discriminator wrappers, VGG perceptual and GAN losses
    'sr_x4_gan': ('diffir_sisr_x4_s2_gan', 'sr', {}),
    # LaMa losses and R1 penalty; ResNet-PL left out: with random weights its gradient is chaotic
    # (a 1e-4 relative change of the input moves it by ~40% in fp32 itself)
    'inpaint_s2': ('diffir_inpaint_places_s2', 'inpaint', dict(resnet_pl_loss=None)),
}


@pytest.mark.parametrize('case', sorted(CASES))
def test_bf16_training_step_stays_close_to_fp32(case):
    name, kind, overrides = CASES[case]
    cfg = tiny_recipe(name, **overrides)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    ref_losses, ref_grads = _train_step(copy.deepcopy(model), cfg, kind)
    losses, grads = _train_step(model, cfg, kind, 'bf16')
    assert set(losses) == set(ref_losses)
    for key, value in ref_losses.items():
        if key.startswith('loss'):
            rtol = GRAD_RTOL if key in GRADIENT_LOSSES else LOSS_RTOL
            assert abs(losses[key] - value) <= rtol * abs(value), (key, losses[key], value)
    errors = _network_errors(ref_grads, grads)
    assert errors and max(errors.values()) <= GRAD_RTOL, errors
    assert any(k.startswith('generator.dirformer') for k in errors)


def test_with_cp_recomputes_under_autocast(monkeypatch):
    """Block checkpointing replays the bf16 forward: the same gradients as without it."""
    from diffir_mm.archs import dirformer
    calls = []
    checkpoint = dirformer.torch_checkpoint.checkpoint
    monkeypatch.setattr(dirformer.torch_checkpoint, 'checkpoint',
                        lambda *a, **k: calls.append(torch.is_autocast_enabled('cpu'))
                        or checkpoint(*a, **k))
    name, kind, overrides = CASES['deblur_s2']
    plain = tiny_recipe(name, **overrides)
    checkpointed = copy.deepcopy(plain)
    checkpointed.model.generator.with_cp = True
    torch.manual_seed(0)
    model = MODELS.build(plain.model)
    torch.manual_seed(0)
    cp_model = MODELS.build(checkpointed.model)
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), cp_model.parameters()))
    assert cp_model.generator.dirformer.encoder_level1.with_cp
    _, grads = _train_step(model, plain, kind, 'bf16')
    assert not calls
    _, cp_grads = _train_step(cp_model, checkpointed, kind, 'bf16')
    assert calls and all(calls)  # every block was checkpointed, under autocast
    assert set(grads) == set(cp_grads)
    for key, grad in grads.items():
        torch.testing.assert_close(cp_grads[key], grad, rtol=1e-5, atol=1e-7, msg=key)
