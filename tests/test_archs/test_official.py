"""Reading the authors' checkpoints (``diffir_mm.archs.checkpoint``) against the official outputs.

Every ``tests/fixtures/official/official_<variant>.pt`` holds a tiny official network (stage 1
and 2; its weights rebuilt by ``helpers.synthetic_state_dict``) and what the authors' code
computes with it (in float64); loading the state dicts through ``diffir_mm.load_official`` must
reproduce those outputs in float32 to ``TOL`` = 2e-6 (docs/advanced_guides/fidelity.md), whether
the state dict is passed directly, as a BasicSR ``.pth`` file or as a LaMa ``.ckpt`` file.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Tuple

import pytest
import torch

from diffir_mm import load_official
from diffir_mm.archs import (CheckpointMismatchError, build_diffir, infer_arch_kwargs,
                             ours_to_official, preset_kwargs, read_components, read_network,
                             require)

from helpers import (OFFICIAL_VARIANTS, TOL, arch_kwargs, load_keys_fixture, load_official_fixture,
                     max_abs_diff, net_input)

VARIANTS = sorted(OFFICIAL_VARIANTS)


@pytest.fixture(scope='module', params=VARIANTS)
def official(request) -> Tuple[str, Dict[str, Any]]:
    """``(variant, fixture data)`` for every official fixture."""
    return request.param, load_official_fixture(request.param)


def _load(data: Dict[str, Any], variant: str, source: Any, stage: int, **kwargs: Any):
    task, scale = OFFICIAL_VARIANTS[variant]
    return load_official(source, task=task, stage=stage, scale=scale, **arch_kwargs(data),
                         **kwargs)


def _check_stage1(net, data: Dict[str, Any]) -> None:
    x, gt = net_input(data), data['inputs']['gt']
    with torch.no_grad():
        assert max_abs_diff(net.extract_prior(x, gt), data['s1_ipr']) <= TOL
        assert max_abs_diff(net(x, gt), data['s1_output']) <= TOL


def _check_stage2_output(net, data: Dict[str, Any]) -> None:
    with torch.no_grad():
        out = net(net_input(data), noise=data['s2_x_T'])
    assert max_abs_diff(out, data['s2_output']) <= TOL


# --------------------------------------------------------------------------- state dicts


def test_stage1_matches_official(official):
    variant, data = official
    net = _load(data, variant, data['s1_state_dict'], stage=1)
    assert not net.training
    _check_stage1(net, data)


def test_stage2_matches_official(official):
    variant, data = official
    net = _load(data, variant, data['s2_state_dict'], stage=2)
    x = net_input(data)
    with torch.no_grad():
        assert max_abs_diff(net.condition(x), data['s2_condition']) <= TOL
        assert max_abs_diff(net.estimate_prior(x, noise=data['s2_x_T']), data['s2_ipr']) <= TOL
        assert max_abs_diff(net(x, noise=data['s2_x_T']), data['s2_output']) <= TOL
        # explicit prior == what the reverse process estimates
        assert max_abs_diff(net.restore(x, data['s2_ipr']), data['s2_output']) <= TOL


def test_stage2_training_chain_matches_official(official):
    variant, data = official
    net = _load(data, variant, data['s2_state_dict'], stage=2)
    with torch.no_grad():
        steps = net.reverse_steps(net_input(data), noise=data['s2_train_noise'],
                                  teacher_prior=data['s1_ipr'])
    reference = data['s2_train_ipr_list']
    assert len(steps) == len(reference) == 4
    for i, (ours, ref) in enumerate(zip(steps, reference)):
        assert max_abs_diff(ours, ref) <= TOL, f'step {i}'


def test_parameter_count_matches_official(official):
    variant, data = official
    n1 = _load(data, variant, data['s1_state_dict'], stage=1)
    n2 = _load(data, variant, data['s2_state_dict'], stage=2)
    assert sum(p.numel() for p in n1.parameters()) == data['n_params']['s1']
    assert sum(p.numel() for p in n2.parameters()) == data['n_params']['s2']


def test_schedule_buffers_match_official(official):
    """Our exported schedule equals the 12 ``diffusion.*`` buffers of the official code."""
    variant, data = official
    net = _load(data, variant, data['s2_state_dict'], stage=2)
    exported = ours_to_official(net.state_dict(), with_duplicates=True, net=net)
    reference = data['s2_state_dict']
    buffers = [k for k in reference if k.startswith('diffusion.')
               and not k.startswith(('diffusion.model.', 'diffusion.condition.'))]
    assert len(buffers) == 12
    for key in buffers:
        torch.testing.assert_close(exported[key], reference[key].float(), rtol=1e-5, atol=1e-6,
                                   msg=key)
    assert set(exported) == set(reference)


# --------------------------------------------------------------------------- checkpoint files


def test_basicsr_file(official, tmp_path: Path):
    """``{'params': sd, 'params_ema': sd}`` files, loaded from a str path and a Path."""
    variant, data = official
    for stage in (1, 2):
        sd = data[f's{stage}_state_dict']
        path = tmp_path / f'net_g_S{stage}.pth'
        torch.save({'params': sd, 'params_ema': sd}, path)
        for source in (str(path), path):
            net = _load(data, variant, source, stage=stage)
            if stage == 1:
                _check_stage1(net, data)
            else:
                _check_stage2_output(net, data)


def test_basicsr_prefers_params_ema_and_falls_back_to_params(tmp_path: Path):
    data = load_official_fixture('sr_x4')
    sd = data['s2_state_dict']
    perturbed = {k: v + 0.5 if v.is_floating_point() else v for k, v in sd.items()}
    path = tmp_path / 'ema.pth'
    torch.save({'params': perturbed, 'params_ema': sd}, path)
    _check_stage2_output(_load(data, 'sr_x4', path, stage=2), data)
    # read once, each in our naming: params -> generator, params_ema -> generator_ema
    parts = read_components(path)
    assert sorted(parts) == ['generator', 'generator_ema']
    assert (parts['generator'].source, parts['generator_ema'].source) == ('ema.pth [params]',
                                                                          'ema.pth [params_ema]')
    key = 'G.encoder_level1.0.attn.qkv.weight'
    ours = 'dirformer.' + key[len('G.'):]
    assert torch.equal(parts['generator'].state[ours], perturbed[key])
    assert torch.equal(parts['generator_ema'].state[ours], sd[key])
    assert not any(k.startswith(('G.', 'diffusion.')) for k in parts['generator'].state)
    assert sorted(parts['generator'].schedule) == sorted(
        k[len('diffusion.'):] for k in sd if k.startswith('diffusion.')
        and not k.startswith(('diffusion.model.', 'diffusion.condition.')))

    path = tmp_path / 'no_ema.pth'  # e.g. Real-SR S1 x2/x1 are saved without EMA
    torch.save({'params': {'module.' + k: v for k, v in sd.items()}}, path)
    _check_stage2_output(_load(data, 'sr_x4', path, stage=2), data)


def _lama_ckpt(generator: Dict[str, torch.Tensor],
               teacher: Dict[str, torch.Tensor] = None) -> Dict[str, Any]:
    """A LaMa / PyTorch-Lightning checkpoint with the usual non-generator entries."""
    state = {'generator.' + k: v for k, v in generator.items()}
    if teacher is not None:
        state.update({'generatorS1.' + k: v for k, v in teacher.items()})
    state.update({
        'discriminator.model0.0.weight': torch.zeros(4, 3, 3, 3),
        'loss_resnet_pl.impl.conv1.weight': torch.zeros(2, 3, 1, 1),
        'val_evaluator.scores.ssim.weight': torch.zeros(3),
        'test_evaluator.scores.lpips.weight': torch.zeros(3),
    })
    return {'state_dict': state, 'epoch': 12, 'global_step': 3456, 'pytorch-lightning_version':
            '1.2.9', 'hyper_parameters': {'generator': {'kind': 'DiffIRS2'}}}


def test_lama_inpainting_ckpt(tmp_path: Path):
    """LaMa S2 ``last.ckpt``: ``generator.*`` is the S2 net, ``generatorS1.*`` the teacher."""
    data = load_official_fixture('inpaint')
    path = tmp_path / 'last.ckpt'
    torch.save(_lama_ckpt(data['s2_state_dict'], data['s1_state_dict']), path)
    _check_stage2_output(_load(data, 'inpaint', path, stage=2), data)
    teacher = _load(data, 'inpaint', path, stage=1, component='teacher')
    _check_stage1(teacher, data)

    # a LaMa stage-1 checkpoint: generator.G.* / generator.E.*, no teacher
    path_s1 = tmp_path / 'last_s1.ckpt'
    torch.save(_lama_ckpt(data['s1_state_dict']), path_s1)
    _check_stage1(_load(data, 'inpaint', path_s1, stage=1), data)
    with pytest.raises(CheckpointMismatchError, match='generatorS1'):
        _load(data, 'inpaint', path_s1, stage=1, component='teacher')


def test_our_checkpoint_round_trip():
    """An mmengine-style checkpoint of ours (``generator.dirformer.*``) loads back."""
    data = load_official_fixture('deblur')
    net = _load(data, 'deblur', data['s2_state_dict'], stage=2)
    teacher = _load(data, 'deblur', data['s1_state_dict'], stage=1)
    state = {'generator.' + k: v for k, v in net.state_dict().items()}
    state.update({'teacher.' + k: v for k, v in teacher.state_dict().items()})
    ckpt = {'state_dict': state, 'meta': {}}
    _check_stage2_output(_load(data, 'deblur', ckpt, stage=2), data)
    _check_stage1(_load(data, 'deblur', ckpt, stage=1, component='teacher'), data)


# --------------------------------------------------------------------------- SR x2 / x1

TINY = dict(dim=8, num_blocks=[1, 1, 1, 2], num_refinement_blocks=1, n_encoder_res=1)


@pytest.mark.parametrize('scale', [2, 1])
@pytest.mark.parametrize('stage', [1, 2])
def test_sr_x2_x1_official_layout_round_trip(scale: int, stage: int):
    """No x2/x1 fixture exists: export a random tiny net in official layout and load it back."""
    torch.manual_seed(scale * 10 + stage)
    source = build_diffir(f'sr_x{scale}', stage, **TINY).eval()
    sd = ours_to_official(source.state_dict(), with_duplicates=True,
                          net=source if stage == 2 else None)
    # independent facts of the official x2/x1 arrangement (section 1.7 / 1.8)
    assert sd['G.patch_embed.proj.weight'].shape[1] == {2: 12, 1: 48}[scale]
    if stage == 1:
        assert sd['E.E.0.weight'].shape[1] == {2: 60, 1: 96}[scale]
    else:
        assert sd['condition.E.0.weight'].shape[1] == {2: 12, 1: 48}[scale]
        n_cpen = sum(k.startswith('condition.') for k in sd)
        assert n_cpen == 2 + 4 * TINY['n_encoder_res'] + 6 + 4
        assert sum(k.startswith('diffusion.') for k in sd) == 12 + 4 + n_cpen

    net = load_official({'params': sd, 'params_ema': sd}, task='sr', stage=stage, scale=scale,
                        **TINY)
    lq = torch.rand(2, 3, 32, 40)
    gt = torch.rand(2, 3, 32 * scale, 40 * scale)
    noise = torch.randn(2, 256)
    with torch.no_grad():
        if stage == 1:
            out, ref = net(lq, gt), source(lq, gt)
        else:
            out, ref = net(lq, noise=noise), source(lq, noise=noise)
    assert out.shape == (2, 3, 32 * scale, 40 * scale)
    assert torch.equal(out, ref)


# --------------------------------------------------------------------------- mismatches


@pytest.mark.parametrize('variant,stage,request_,found', [
    ('deblur', 1, dict(task='sr', stage=2, scale=4), 'stage-1 deblur'),
    ('deblur', 2, dict(task='deblur', stage=1), 'stage-2 deblur'),
    ('sr_x4', 2, dict(task='sr', stage=2, scale=2), 'stage-2 sr x4'),
    ('sr_x4', 1, dict(task='sr', stage=1, scale=1), 'stage-1 sr x4'),
    ('inpaint', 2, dict(task='deblur', stage=2), 'stage-2 inpaint'),
    ('deblur', 2, dict(task='inpaint', stage=2), 'stage-2 deblur'),
])
def test_wrong_task_scale_or_stage_is_reported(variant, stage, request_, found):
    data = load_official_fixture(variant)
    with pytest.raises(CheckpointMismatchError) as info:
        load_official(data[f's{stage}_state_dict'], **request_)
    message = str(info.value)
    assert found in message, message
    assert 'requested' in message and '\n' not in message


def test_wrong_stage_in_a_basicsr_file(tmp_path: Path):
    data = load_official_fixture('sr_x4')
    path = tmp_path / 'DiffIRS1.pth'
    torch.save({'params_ema': data['s1_state_dict']}, path)
    with pytest.raises(CheckpointMismatchError, match='stage-1 sr x4'):
        load_official(path, task='sr', stage=2, scale=4)


def test_wrong_width_is_reported():
    """A dim=8 checkpoint requested as the released (dim=64) SR x4 preset."""
    data = load_official_fixture('sr_x4')
    with pytest.raises(CheckpointMismatchError, match='dim=8'):
        load_official(data['s2_state_dict'], task='sr', stage=2, scale=4)


def test_missing_or_extra_keys_are_reported():
    data = load_official_fixture('sr_x4')
    sd = dict(data['s1_state_dict'])
    del sd['G.latent.0.attn.temperature']
    with pytest.raises(CheckpointMismatchError, match='missing'):
        _load(data, 'sr_x4', sd, stage=1)
    sd = dict(data['s1_state_dict'], **{'G.extra.weight': torch.zeros(1)})
    with pytest.raises(CheckpointMismatchError, match='unexpected'):
        _load(data, 'sr_x4', sd, stage=1)


def test_inconsistent_duplicates_are_reported():
    data = load_official_fixture('sr_x4')
    sd = dict(data['s2_state_dict'])
    key = next(k for k in sd if k.startswith('diffusion.model.'))
    sd[key] = sd[key] + 1
    with pytest.raises(CheckpointMismatchError, match='differs'):
        _load(data, 'sr_x4', sd, stage=2)


def test_other_sources_are_rejected(tmp_path: Path):
    data = load_official_fixture('sr_x4')
    with pytest.raises(FileNotFoundError):
        load_official(tmp_path / 'does_not_exist.pth', task='sr', stage=2)
    with pytest.raises(CheckpointMismatchError, match='no stage-1 teacher'):
        load_official({'params': data['s1_state_dict']}, task='sr', stage=1,
                      component='teacher', **arch_kwargs(data))
    with pytest.raises(CheckpointMismatchError, match='not a DiffIR checkpoint'):
        load_official({'params': {'conv_first.weight': torch.zeros(64, 3, 3, 3)}}, task='sr')
    corrupt = tmp_path / 'corrupt.pth'
    corrupt.write_bytes(b'this is not a checkpoint')
    with pytest.raises(CheckpointMismatchError, match='cannot read'):
        load_official(corrupt, task='sr')


# --------------------------------------------------------------------------- one reading


def test_require_is_one_line_and_names_the_caller():
    data = load_official_fixture('sr_x4')
    ckpt = read_network({'params_ema': data['s2_state_dict']})
    assert require(ckpt, stage=2, task='sr', scale=4) is ckpt
    with pytest.raises(CheckpointMismatchError) as info:
        require(ckpt, stage=2, task='sr', scale=2, needed_by='diffir_sr_x2_s2.py')
    assert str(info.value) == ('checkpoint [params_ema] holds a stage-2 sr x4 model, dim=8, but '
                               'diffir_sr_x2_s2.py needs a stage-2 sr x2 model')
    with pytest.raises(ValueError, match='task must be one of'):
        require(ckpt, task='denoise')
    net = build_diffir('sr_x4', 2, **arch_kwargs(data))
    net.diffusion.betas.mul_(2)
    with pytest.raises(CheckpointMismatchError, match='diffusion schedule'):
        require(ckpt, net=net)


KEY_FIXTURES = {'deblur': 'deblur', 'sr_x4': 'sr_x4', 'sr_x2': 'sr_x2', 'sr_x1': 'sr_x1',
                'inpaint': 'inp', 'inpaint_big': 'inpbig'}


@pytest.mark.parametrize('preset', sorted(KEY_FIXTURES))
@pytest.mark.parametrize('stage', [1, 2])
def test_architecture_is_read_from_released_layouts(preset: str, stage: int):
    """Every released key layout gives back exactly its preset (shapes only: meta tensors)."""
    keys = load_keys_fixture(KEY_FIXTURES[preset], stage)
    sd = {k: torch.empty(shape, device='meta') for k, shape in keys.items()
          if not k.startswith('diffusion.')}
    kwargs = infer_arch_kwargs(read_network(sd))
    expected = preset_kwargs(preset, stage)
    for name in ('timesteps', 'linear_start', 'linear_end'):  # read from the schedule buffers
        expected.pop(name, None)
    assert {k: list(v) if isinstance(v, (list, tuple)) else v for k, v in kwargs.items()} == {
        k: list(v) if isinstance(v, (list, tuple)) else v for k, v in expected.items()}

