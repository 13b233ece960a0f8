"""Released presets (``diffir_mm.archs.presets``) at full size.

Each preset is built once per stage (module-scoped) and checked against the key layouts of the
released checkpoints (``tests/fixtures/official/keys.json.gz``) and the parameter counts of
``docs/advanced_guides/method.md`` §2.5.
"""
from __future__ import annotations

from typing import Dict, Tuple

import pytest
import torch

from diffir_mm.archs import (DIFFUSION_DEFAULTS, PRESETS, build_diffir, ours_to_official,
                             preset_kwargs, preset_name)

from helpers import load_keys_fixture

#: preset -> name used by the key-layout fixtures
KEYS_NAME = {'deblur': 'deblur', 'sr_x4': 'sr_x4', 'sr_x2': 'sr_x2', 'sr_x1': 'sr_x1',
             'inpaint': 'inp', 'inpaint_big': 'inpbig'}
BUILDS = [(preset, stage) for preset in KEYS_NAME for stage in (1, 2)]

#: (preset, stage) -> total parameters (method.md §2.5; counted once per shared module)
TOTAL_PARAMS = {
    ('deblur', 1): 26_742_206, ('deblur', 2): 26_911_934,
    ('sr_x4', 1): 24_801_478, ('sr_x4', 2): 24_971_206,
    ('sr_x2', 2): 24_981_574, ('sr_x1', 2): 25_023_046,
    ('inpaint', 1): 26_232_746, ('inpaint', 2): 26_402_474,
    ('inpaint_big', 2): 49_482_922,
}
#: (preset, stage) -> (DIRformer, CPEN, denoiser) parameters (counted from the releases)
PART_PARAMS = {
    ('deblur', 1): (25_669_374, 1_072_832, 0), ('deblur', 2): (25_669_374, 1_045_184, 197_376),
    ('sr_x4', 1): (23_459_142, 1_342_336, 0), ('sr_x4', 2): (23_459_142, 1_314_688, 197_376),
    ('sr_x2', 2): (23_464_326, 1_319_872, 197_376),
    ('sr_x1', 2): (23_485_062, 1_340_608, 197_376),
    ('inpaint', 1): (25_150_698, 1_082_048, 0),
    ('inpaint', 2): (25_150_698, 1_054_400, 197_376),
    ('inpaint_big', 2): (48_009_578, 1_275_968, 197_376),
}
#: (preset, stage) -> (total keys, G, E / condition, denoise, diffusion) of the released files
KEY_COUNTS = {
    ('sr_x4', 2): (615, 499, 48, 4, 64),
    ('deblur', 2): (588, 504, 32, 4, 48),
    ('inpaint', 2): (289, 205, 32, 4, 48),
}


def _numel(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.fixture(scope='module')
def full_nets() -> Dict[Tuple[str, int], torch.nn.Module]:
    """Every released network, built once (about 3 s in all)."""
    torch.manual_seed(0)
    return {key: build_diffir(*key) for key in BUILDS}


@pytest.mark.parametrize('preset,stage', BUILDS)
def test_official_key_layout(full_nets, preset: str, stage: int):
    """Our network exported in official naming == a released checkpoint's keys and shapes."""
    reference = load_keys_fixture(KEYS_NAME[preset], stage)
    net = full_nets[preset, stage]
    exported = ours_to_official(net.state_dict(), with_duplicates=True,
                                net=net if stage == 2 else None)
    ours = {k: list(v.shape) for k, v in exported.items()}
    assert sorted(set(reference) - set(ours)) == [], 'missing keys'
    assert sorted(set(ours) - set(reference)) == [], 'unexpected keys'
    assert {k: s for k, s in ours.items() if s != reference[k]} == {}, 'shape mismatches'
    if stage == 2:
        buffers = [k for k in reference if k.startswith('diffusion.')
                   and not k.startswith(('diffusion.model.', 'diffusion.condition.'))]
        assert len(buffers) == 12 and all(reference[k] == [4] for k in buffers)
        for prefix, dup in (('denoise.', 'diffusion.model.'),
                            ('condition.', 'diffusion.condition.')):
            originals = {k[len(prefix):] for k in reference if k.startswith(prefix)}
            assert originals and originals == {k[len(dup):] for k in reference
                                               if k.startswith(dup)}


@pytest.mark.parametrize('preset,stage', sorted(KEY_COUNTS))
def test_official_key_counts(preset: str, stage: int):
    reference = load_keys_fixture(KEYS_NAME[preset], stage)
    total, g, cond, den, diff = KEY_COUNTS[preset, stage]
    count = lambda prefix: sum(k.startswith(prefix) for k in reference)  # noqa: E731
    assert (len(reference), count('G.'), count('condition.'), count('denoise.'),
            count('diffusion.')) == (total, g, cond, den, diff)


@pytest.mark.parametrize('preset,stage', sorted(TOTAL_PARAMS))
def test_parameter_counts(full_nets, preset: str, stage: int):
    net = full_nets[preset, stage]
    assert _numel(net) == TOTAL_PARAMS[preset, stage]
    g, cpen, den = PART_PARAMS[preset, stage]
    assert _numel(net.dirformer) == g
    assert _numel(net.cpen) == cpen
    assert (_numel(net.denoiser) if stage == 2 else 0) == den


@pytest.mark.parametrize('preset,stage', BUILDS)
def test_parameter_count_equals_the_released_layout(full_nets, preset: str, stage: int):
    """Parameters == the numel of the released keys without duplicates and buffers."""
    reference = load_keys_fixture(KEYS_NAME[preset], stage)
    released = 0
    for key, shape in reference.items():
        if key.startswith('diffusion.'):
            continue  # duplicates of condition.* / denoise.*, and the schedule buffers
        released += int(torch.tensor(shape).prod()) if shape else 1
    assert _numel(full_nets[preset, stage]) == released


def test_stage2_shares_the_dirformer_of_stage1(full_nets):
    """Stage-1 -> stage-2 initialisation transfers G.* one to one (section 6.1)."""
    for preset in KEYS_NAME:
        s1 = full_nets[preset, 1].dirformer.state_dict()
        s2 = full_nets[preset, 2].dirformer.state_dict()
        assert {k: v.shape for k, v in s1.items()} == {k: v.shape for k, v in s2.items()}


def test_released_hyper_parameters():
    """Section 1.12, written out independently of the presets module."""
    expected = {
        'deblur': (48, [3, 5, 6, 6], 4, 2.0, 'WithBias', 5),
        'sr_x4': (64, [13, 1, 1, 1], 13, 2.2, 'BiasFree', 9),
        'inpaint': (52, [1, 1, 1, 9], 0, 1.8, 'WithBias', 5),
        'inpaint_big': (52, [1, 1, 1, 20], 0, 1.8, 'WithBias', 8),
    }
    for preset, (dim, blocks, refine, ffn, norm, n_res) in expected.items():
        kw = PRESETS[preset]
        assert (kw['dim'], list(kw['num_blocks']), kw['num_refinement_blocks'],
                kw['ffn_expansion_factor'], kw['LayerNorm_type'], kw['n_encoder_res']) == (
                    dim, blocks, refine, ffn, norm, n_res), preset
        assert list(kw['heads']) == [1, 2, 4, 8] and kw['bias'] is False
    assert [PRESETS[f'sr_x{s}']['scale'] for s in (4, 2, 1)] == [4, 2, 1]
    assert DIFFUSION_DEFAULTS == dict(n_denoise_res=1, timesteps=4, linear_start=0.1,
                                      linear_end=0.99)


def test_preset_helpers():
    assert [preset_name('sr', s) for s in (4, 2, 1)] == ['sr_x4', 'sr_x2', 'sr_x1']
    assert preset_name('deblur') == 'deblur'
    assert preset_name('inpaint', big=True) == 'inpaint_big'
    with pytest.raises(ValueError):
        preset_name('sr', 3)
    with pytest.raises(ValueError):
        preset_name('denoise')
    with pytest.raises(ValueError):
        preset_name('sr_x2')  # one vocabulary: task + scale
    with pytest.raises(ValueError):
        preset_name('deblur', big=True)
    with pytest.raises(ValueError):
        preset_kwargs('deblur', 3)
    with pytest.raises(TypeError):
        preset_kwargs('deblur', 2, width=4)
    assert 'timesteps' not in preset_kwargs('deblur', 1, timesteps=8)  # stage 1 ignores it
    assert preset_kwargs('deblur', 2, timesteps=8)['timesteps'] == 8
