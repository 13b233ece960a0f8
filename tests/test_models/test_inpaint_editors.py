"""DiffIR inpainting editors: official training chain, released layouts, LaMa step, errors.

* the stage-2 editor's training forward on the official inpainting fixture (teacher IPR
  ``s1_ipr`` and the 4 reverse steps ``s2_train_ipr_list`` from ``s2_train_noise``) to ``TOL``;
* the generators (and the stage-2 teacher) built from the model bases
  ``configs/_base_/models/diffir_inpaint_s{1,2}.py`` (and the big override) take the released
  key layouts ``keys_inp[big]_S{1,2}.json`` with no missing or unexpected keys;
* a train step of tiny versions of the model bases: every loss term logged and finite, generator
  and discriminator both change, the teacher does not and is never saved; what the
  discriminator step sees (``disc_regenerate``);
* bad input: no mask, a mask of another size, a non-binary mask (binarised as ``mask > 0``), no
  ground truth for stage 1, no stage-1 checkpoint for stage 2.
"""
import copy
import math
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.logging import MessageHub
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope

import diffir_mm.registration  # noqa: F401  (registers)
from diffir_mm.archs import CheckpointMismatchError, read_network, require
from diffir_mm.models.editors.common import load_into
from mmagic.registry import MODELS
from mmagic.structures import DataSample

from helpers import (REPO_ROOT, TOL, arch_kwargs, load_keys_fixture, load_official_fixture,
                     max_abs_diff)

init_default_scope('mmagic')

BASES = osp.join(REPO_ROOT, 'configs', '_base_', 'models')
TINY_NET = dict(dim=8, num_blocks=[1, 1, 1, 1], n_encoder_res=1)
TINY_DISC = dict(ndf=8, n_layers=2)
RANDOM_PL = dict(weights_path=None, allow_random_weights=True)
SIZE = 32
G_LOSSES = {'loss_l1_masked', 'loss_adv', 'loss_fm', 'loss_resnet_pl'}
D_LOSSES = {'loss_d_real', 'loss_d_fake', 'loss_r1'}


def _cfg(stage: int) -> Config:
    return Config.fromfile(osp.join(BASES, f'diffir_inpaint_s{stage}.py'))


def _tiny(stage: int, **model) -> Config:
    """The stage's model base with a tiny generator / discriminator and a random ResNet-PL."""
    cfg = _cfg(stage)
    cfg.model.generator.update(TINY_NET)
    cfg.model.discriminator.update(TINY_DISC)
    cfg.model.resnet_pl_loss.update(RANDOM_PL)
    cfg.model.update(model)
    return cfg


def _build(cfg: Config):
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    return model, build_optim_wrapper(model, cfg.optim_wrapper)


def _mask(top: int, left: int, side: int) -> torch.Tensor:
    mask = torch.zeros(1, SIZE, SIZE)
    mask[:, top:top + side, left:left + side] = 1
    return mask


def _data(batch: int = 2, seed: int = 0, masks=None, with_gt: bool = True) -> dict:
    """A loader batch: masked images 0-255 (holes 0) + data samples with gt and mask."""
    g = torch.Generator().manual_seed(seed)
    inputs, samples = [], []
    for i in range(batch):
        gt = torch.randint(0, 256, (3, SIZE, SIZE), generator=g).float()
        mask = masks[i] if masks is not None else _mask(4 + 3 * i, 6, 12)
        known = 1 - (mask[:1] > 0).float() if mask.shape[-2:] == gt.shape[-2:] else 1
        inputs.append(gt * known)
        sample = DataSample(mask=mask)
        if with_gt:
            sample.gt_img = gt
        sample.set_metainfo(dict(img_channel_order='rgb', gt_channel_order='rgb'))
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def _finite(log: dict) -> bool:
    return all(math.isfinite(float(v)) for v in log.values())


def _changed(before: dict, module: torch.nn.Module) -> bool:
    return any(not torch.equal(before[k], v) for k, v in module.state_dict().items()
               if v.is_floating_point())


@pytest.fixture(scope='module')
def stage1(tmp_path_factory):
    """A tiny stage-1 model trained 2 steps from the model base, and its checkpoint file."""
    hub = MessageHub.get_current_instance()
    model, optim = _build(_tiny(1))
    g0 = copy.deepcopy(model.generator.state_dict())
    d0 = copy.deepcopy(model.discriminator.state_dict())
    logs = []
    for it in range(2):
        hub.update_info('iter', it)
        logs.append(model.train_step(_data(seed=it), optim))
    path = tmp_path_factory.mktemp('s1') / 's1.pth'
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, path)
    return dict(model=model, path=str(path), logs=logs, g0=g0, d0=d0)


# ------------------------------------------------------------------------ official training chain
def test_stage2_training_forward_reproduces_the_official_chain(tmp_path):
    data = load_official_fixture('inpaint')
    inputs = data['inputs']
    s1_file = tmp_path / 'celeba-S1.pth'  # the S1forS2.py file: G.* + E.*
    torch.save(data['s1_state_dict'], s1_file)
    net = dict(type='DiffIRS2Net', task='inpaint', scale=1, out_channels=3, **arch_kwargs(data))
    cfg = _cfg(2)
    cfg.model.generator = net
    cfg.model.discriminator.update(TINY_DISC)
    cfg.model.resnet_pl_loss.update(RANDOM_PL)
    cfg.model.stage1_checkpoint = str(s1_file)
    model = MODELS.build(cfg.model)
    with pytest.warns(UserWarning, match='random encoder'):
        model.init_weights()
    s1 = read_network(data['s1_state_dict']).state
    # official init: the S2 DIRformer comes from the S1 file (strict=False), the teacher is S1
    for key, value in s1.items():
        assert torch.equal(model.teacher.state_dict()[key], value)
        if key.startswith('dirformer.'):
            assert torch.equal(model.generator.state_dict()[key], value)
    load_into(model.generator, read_network(data['s2_state_dict']).state, 'fixture S2')

    samples = DataSample.stack([DataSample(mask=m) for m in inputs['mask']])
    net_input, mask = model.network_input(inputs['lq'], samples)
    assert torch.equal(net_input, inputs['net_input'])
    model.train()
    with torch.no_grad():
        image, steps, z_teacher = model.generator_forward(net_input, inputs['gt'],
                                                          noise=data['s2_train_noise'])
    assert max_abs_diff(z_teacher, data['s1_ipr']) <= TOL
    assert len(steps) == len(data['s2_train_ipr_list']) == 4
    for i, (ours, ref) in enumerate(zip(steps, data['s2_train_ipr_list'])):
        assert max_abs_diff(ours, ref) <= TOL, f'step {i}'
    assert image.shape == inputs['gt'].shape


# ------------------------------------------------------------------------ released layouts
@pytest.mark.parametrize('big', [False, True], ids=['inp', 'inpbig'])
@pytest.mark.parametrize('stage', [1, 2])
def test_released_layouts_load_into_the_model_bases(stage: int, big: bool):
    cfg = _cfg(stage)
    if big:
        cfg.model.generator.update(cfg.big_generator)
    with torch.device('meta'):  # full size, no memory
        model = MODELS.build(cfg.model)
    nets = {stage: model.generator}
    if stage == 2:
        nets[1] = model.teacher
    for net_stage, net in nets.items():
        keys = load_keys_fixture('inpbig' if big else 'inp', net_stage)
        released = {k: torch.empty(shape, device='meta') for k, shape in keys.items()
                    if not k.startswith('diffusion.')}  # the schedule: values, not weights
        ckpt = read_network(released)
        require(ckpt, net=net)  # every key and shape: no missing, unexpected or reshaped one
        assert len(ckpt.state) == len(net.state_dict())


# ------------------------------------------------------------------------ training steps
def test_stage1_train_step_logs_every_loss_and_trains_both_networks(stage1):
    for log in stage1['logs']:
        assert set(log) == G_LOSSES | D_LOSSES
        assert _finite(log)
    model = stage1['model']
    assert _changed(stage1['g0'], model.generator)
    assert _changed(stage1['d0'], model.discriminator)


def test_stage2_train_step(stage1, tmp_path):
    model, optim = _build(_tiny(2, stage1_checkpoint=stage1['path']))
    model.init_weights()
    teacher = copy.deepcopy(model.teacher.state_dict())
    g0 = copy.deepcopy(model.generator.state_dict())
    d0 = copy.deepcopy(model.discriminator.state_dict())
    MessageHub.get_current_instance().update_info('iter', 0)
    log = model.train_step(_data(), optim)
    assert set(log) == G_LOSSES | D_LOSSES | {'loss_diff', 'kd_kl'}
    assert _finite(log)
    assert _changed(g0, model.generator) and _changed(d0, model.discriminator)
    # joint from step 0: the DIRformer trains too
    assert any(not torch.equal(g0[k], v) for k, v in model.generator.state_dict().items()
               if k.startswith('dirformer.'))
    assert all(torch.equal(v, model.teacher.state_dict()[k]) for k, v in teacher.items())
    assert not model.teacher.training
    assert all(not p.requires_grad for p in model.teacher.parameters())
    assert not any(k.startswith('teacher.') for k in model.state_dict())


@pytest.mark.parametrize('regenerate', [True, False])
def test_discriminator_sees_the_raw_output_of_the_right_generator(regenerate, monkeypatch):
    """LaMa's discriminator step sees a new forward of the updated generator (or, opt-out, the
    generator-step output), raw (not blended)."""
    model, optim = _build(_tiny(1, train_cfg=dict(disc_regenerate=regenerate)))
    data = _data()
    batch = model.data_preprocessor(copy.deepcopy(data), True)
    net_input, _ = model.network_input(batch['inputs'], batch['data_samples'])
    gt = batch['data_samples'].gt_img
    seen = {}
    objective = model._discriminator_objective

    def spy(real, fake, mask):
        seen['fake'] = fake.clone()
        return objective(real, fake, mask)

    monkeypatch.setattr(model, '_discriminator_objective', spy)
    with torch.no_grad():
        before = model.generator(net_input, gt)
    model.train_step(data, optim)
    with torch.no_grad():
        after = model.generator(net_input, gt)
    assert not torch.allclose(before, after)
    expected = after if regenerate else before
    assert torch.allclose(seen['fake'], expected, atol=1e-6)


def test_optimizers_follow_the_official_recipe():
    cfg = _cfg(1)
    assert cfg.optim_wrapper.generator.optimizer == dict(type='Adam', lr=2e-4)
    assert cfg.optim_wrapper.discriminator.optimizer == dict(type='Adam', lr=1e-4)
    assert cfg.optim_wrapper.generator.clip_grad == dict(max_norm=1)
    assert cfg.optim_wrapper.discriminator.clip_grad == dict(max_norm=1)


# ------------------------------------------------------------------------ evaluation and errors
def test_predict_blends_the_raw_output_into_the_known_pixels(stage1):
    model = stage1['model'].eval()
    data = _data(batch=1)
    out = model.val_step(data)[0].output
    assert set(out.keys()) >= {'fake_res', 'fake_img', 'pred_img'}
    assert out.pred_img.shape == (3, SIZE, SIZE)
    known = (data['data_samples'][0].mask == 0).expand(3, -1, -1)
    gt_bgr = data['data_samples'][0].gt_img.flip(0)  # outputs are BGR 0-255
    assert torch.allclose(out.fake_img[known], gt_bgr[known], atol=1e-3)
    assert torch.equal(out.pred_img, out.fake_img)
    hole = ~known
    assert torch.allclose(out.fake_img[hole], out.fake_res[hole])


def test_hole_fill_value_of_the_input_does_not_matter(stage1):
    """MMagic's GetMaskedImage fills holes with 127.5 by default; the editor zeroes them."""
    model = stage1['model'].eval()
    zero, grey = _data(batch=1), _data(batch=1)
    mask = grey['data_samples'][0].mask
    grey['inputs'][0] = grey['inputs'][0] + 127.5 * mask
    a, b = model.val_step(zero)[0].output, model.val_step(grey)[0].output
    assert torch.allclose(a.fake_res, b.fake_res, atol=1e-4)


def _one_line(err) -> str:
    text = str(err.value)
    assert '\n' not in text
    return text


def test_missing_mask_is_one_line_error(stage1):
    model = stage1['model'].eval()
    data = _data(batch=1)
    data['data_samples'][0] = DataSample(gt_img=data['data_samples'][0].gt_img)
    with pytest.raises(ValueError, match='needs a mask') as err:
        model.val_step(data)
    _one_line(err)
    model.train()
    with pytest.raises(ValueError, match='needs a mask'):
        model.train_step(data, None)


def test_mask_of_another_size_is_one_line_error(stage1):
    model = stage1['model'].eval()
    data = _data(batch=1, masks=[torch.ones(1, SIZE // 2, SIZE)])
    with pytest.raises(ValueError, match=r'\(1, 1, 32, 32\)') as err:
        model.val_step(data)
    _one_line(err)
    data = _data(batch=1, masks=[torch.ones(3, SIZE, SIZE)])  # an RGB mask
    with pytest.raises(ValueError, match='mask must be'):
        model.val_step(data)


def test_non_binary_mask_is_binarised_as_mask_gt_0(stage1):
    model = stage1['model'].eval()
    soft = _mask(4, 6, 12) * 0.3
    soft[:, 20:24, 20:24] = 0.01
    binary = (soft > 0).float()
    a = model.val_step(_data(batch=1, masks=[soft]))[0].output
    b = model.val_step(_data(batch=1, masks=[binary]))[0].output
    assert torch.equal(a.fake_img, b.fake_img)


def test_stage1_needs_the_ground_truth_outside_training(stage1):
    model = stage1['model'].eval()
    with pytest.raises(ValueError, match='ground truth'):
        model.val_step(_data(batch=1, with_gt=False))


def test_stage2_needs_its_stage1_checkpoint(tmp_path):
    model = MODELS.build(_tiny(2, stage1_checkpoint=None).model)
    with pytest.raises(CheckpointMismatchError, match='model.stage1_checkpoint'):
        model.init_weights()
    model = MODELS.build(_tiny(2, stage1_checkpoint=str(tmp_path / 'missing.pth')).model)
    with pytest.raises(FileNotFoundError):
        model.init_weights()


def test_stage2_predicts_without_ground_truth(stage1):
    model = MODELS.build(_tiny(2, stage1_checkpoint=stage1['path']).model)
    model.init_weights()
    model.eval()
    out = model.val_step(_data(batch=1, with_gt=False))[0].output
    assert out.pred_img.shape == (3, SIZE, SIZE)
    noise = torch.randn(1, 256, generator=torch.Generator().manual_seed(0))
    batch = model.data_preprocessor(_data(batch=1), False)
    with torch.no_grad():
        a = model.forward_tensor(batch['inputs'], batch['data_samples'], noise=noise)[1]
        b = model.forward_tensor(batch['inputs'], batch['data_samples'], noise=noise)[1]
    assert torch.equal(a, b)


def test_stage2_inference_precision_follows_test_cfg(stage1):
    from helpers import BF16_REL_TOL, rel_error

    model = MODELS.build(_tiny(2, stage1_checkpoint=stage1['path']).model)
    model.init_weights()
    model.eval()
    batch = model.data_preprocessor(_data(batch=1), False)
    noise = torch.randn(1, 256, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        fp32 = model.forward_tensor(batch['inputs'], batch['data_samples'], noise=noise)[0]
        model.test_cfg = dict(precision='bf16')
        bf16 = model.forward_tensor(batch['inputs'], batch['data_samples'], noise=noise)[0]
    assert 0 < rel_error(bf16, fp32) < BF16_REL_TOL


def test_stage2_fine_tunes_from_a_released_lama_checkpoint(tmp_path):
    """``stage2_checkpoint`` + ``discriminator_checkpoint`` = a released LaMa ``last.ckpt``:
    generator, teacher (``generatorS1.*``) and discriminator all start from it."""
    from diffir_mm.archs import ours_to_official

    released, _ = _build(_tiny(2, stage1_checkpoint=None))
    torch.manual_seed(7)
    for module in (released.generator, released.teacher, released.discriminator):
        for p in module.parameters():
            p.data.normal_()
    gen = released.generator
    state = {f'generator.{k}': v for k, v in
             ours_to_official(gen.state_dict(), with_duplicates=True, net=gen).items()}
    state.update({f'generatorS1.{k}': v
                  for k, v in ours_to_official(released.teacher.state_dict()).items()})
    state.update({f'discriminator.{k}': v
                  for k, v in released.discriminator.state_dict().items()})
    path = tmp_path / 'last.ckpt'
    torch.save({'state_dict': state, 'global_step': 1}, path)
    model = MODELS.build(_tiny(2, stage1_checkpoint=None, stage2_checkpoint=str(path),
                               discriminator_checkpoint=str(path)).model)
    model.init_weights()
    for name in ('generator', 'teacher', 'discriminator'):
        ours, theirs = getattr(model, name).state_dict(), getattr(released, name).state_dict()
        assert all(torch.equal(ours[k], v) for k, v in theirs.items()), name
    model = MODELS.build(_tiny(2, stage1_checkpoint=None, discriminator_checkpoint=str(
        tmp_path / 'nope.ckpt'), stage2_checkpoint=str(path)).model)
    with pytest.raises(FileNotFoundError):
        model.init_weights()


# ------------------------------------------------------------------------ optional EMA (the demo)
def test_ema_is_off_by_default_so_the_official_layout_is_unchanged(stage1):
    model = stage1['model']
    assert model.generator_ema is None and model.inference_net is model.generator
    assert not any(k.startswith('generator_ema.') for k in model.state_dict())


def test_ema_generator_is_followed_by_the_hook_and_used_outside_training(tmp_path):
    from types import SimpleNamespace

    from diffir_mm.engine.hooks import GeneratorEMAHook
    from diffir_mm.models.editors.common import gt_in_input_space

    hub = MessageHub.get_current_instance()
    model, optim = _build(_tiny(1, is_use_ema=True))
    ema0 = copy.deepcopy(model.generator_ema.state_dict())
    assert all(torch.equal(v, model.generator.state_dict()[k]) for k, v in ema0.items())
    hub.update_info('iter', 0)
    model.train_step(_data(), optim)
    # the train step leaves the EMA copy alone; the hook moves it by `momentum` toward the weights
    assert all(torch.equal(v, model.generator_ema.state_dict()[k]) for k, v in ema0.items())
    GeneratorEMAHook(momentum=0.25).after_train_iter(
        SimpleNamespace(model=model, iter=0, message_hub=hub), 0)
    trained = dict(model.generator.named_parameters())
    for name, p_ema in model.generator_ema.named_parameters():
        expected = ema0[name] + 0.25 * (trained[name].detach() - ema0[name])
        assert torch.allclose(p_ema, expected, atol=1e-6), name
    assert not all(torch.equal(p, trained[n]) for n, p in model.generator_ema.named_parameters())

    # validation restores with the EMA copy, not the trained generator
    model.eval()
    batch = model.data_preprocessor(_data(batch=1), False)
    net_input, _ = model.network_input(batch['inputs'], batch['data_samples'])
    gt = gt_in_input_space(batch['data_samples'], model.data_preprocessor, training=False)
    with torch.no_grad():
        raw = model.forward_tensor(batch['inputs'], batch['data_samples'])[0]
        assert torch.equal(raw, model.generator_ema(net_input, gt))
        assert not torch.equal(raw, model.generator(net_input, gt))

    # a stage 2 taught by this checkpoint: the teacher is the EMA network (what was evaluated)
    path = tmp_path / 's1_ema.pth'
    state = model.state_dict()
    assert any(k.startswith('generator_ema.') for k in state)
    torch.save({'state_dict': state, 'meta': {}}, path)
    s2 = MODELS.build(_tiny(2, stage1_checkpoint=str(path), is_use_ema=True).model)
    s2.init_weights()
    ema_weights = model.generator_ema.state_dict()
    assert all(torch.equal(v, ema_weights[k]) for k, v in s2.teacher.state_dict().items())
    for net in (s2.generator, s2.generator_ema):
        dirformer = net.dirformer.state_dict()
        assert all(torch.equal(v, ema_weights[f'dirformer.{k}']) for k, v in dirformer.items())
