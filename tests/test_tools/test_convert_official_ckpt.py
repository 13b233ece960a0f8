"""``tools/convert_official_ckpt.py``: released DiffIR checkpoints -> diffir_mm checkpoints.

The released files are too large to ship, so tiny random networks are exported in the official
layout (``ours_to_official(..., with_duplicates=True)``) and wrapped like the releases.
"""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Dict, List

import pytest
import torch

import diffir_mm.archs  # noqa: F401  (torch-only import; the tool needs no mmcv)  isort:skip
from diffir_mm.archs import build_diffir, load_official, ours_to_official

REPO = Path(__file__).resolve().parents[2]
TOOL = REPO / 'tools' / 'convert_official_ckpt.py'
TINY = dict(dim=8, num_blocks=[1, 1, 1, 1], num_refinement_blocks=1, n_encoder_res=1)
TINY_INPAINT = dict(TINY, num_refinement_blocks=0)


def _arch_args(kw: Dict) -> List[str]:
    return ['--arch'] + [f'{k}={v!r}'.replace(' ', '') for k, v in kw.items()]


@pytest.fixture(scope='module')
def tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location('convert_official_ckpt', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True, scope='module')
def _single_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def _official(preset: str, stage: int, seed: int, kw: Dict = TINY) -> Dict[str, torch.Tensor]:
    """A random tiny network of ``preset`` in the released (official) key layout."""
    torch.manual_seed(seed)
    net = build_diffir(preset, stage, **kw)
    return ours_to_official(net.state_dict(), with_duplicates=True,
                            net=net if stage == 2 else None)


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(TOOL), *args], cwd=REPO, capture_output=True,
                          text=True, timeout=300, env=dict(os.environ, OMP_NUM_THREADS='1'))


def _outputs(net, lq: torch.Tensor, gt: torch.Tensor = None) -> torch.Tensor:
    with torch.no_grad():
        return net(lq, gt) if gt is not None else net(lq, noise=torch.ones(lq.shape[0], 256))


def test_round_trip_basicsr(tmp_path: Path):
    """BasicSR S2 file (+ S1 teacher) -> converted -> load_official gives identical outputs."""
    params, ema, s1 = _official('sr_x4', 2, 0), _official('sr_x4', 2, 1), _official('sr_x4', 1, 2)
    src, teacher, dst = tmp_path / 'DiffIRS2.pth', tmp_path / 'DiffIRS1.pth', tmp_path / 'o.pth'
    torch.save({'params': params, 'params_ema': ema}, src)
    torch.save({'params_ema': s1}, teacher)

    result = _run(str(src), str(dst), '--task', 'sr', '--stage', '2', '--teacher', str(teacher),
                  *_arch_args(TINY))
    assert result.returncode == 0, result.stderr
    assert dst.is_file() and not list(tmp_path.glob('.*.tmp'))

    ckpt = torch.load(dst, map_location='cpu', weights_only=True)
    assert ckpt['meta']['diffir_mm'] == dict(
        converted_from='DiffIRS2.pth', task='sr', stage=2, scale=4, arch=TINY,
        generator_from='DiffIRS2.pth [params]', generator_ema_from='DiffIRS2.pth [params_ema]',
        teacher_from='DiffIRS1.pth [params_ema]')
    groups = {k.split('.', 1)[0] for k in ckpt['state_dict']}
    assert groups == {'generator', 'generator_ema', 'teacher'}
    assert {k.split('.', 2)[1] for k in ckpt['state_dict'] if k.startswith('generator.')} == {
        'dirformer', 'cpen', 'denoiser'}
    assert {k.split('.', 2)[1] for k in ckpt['state_dict'] if k.startswith('teacher.')} == {
        'dirformer', 'cpen'}
    assert not any('diffusion' in k for k in ckpt['state_dict'])

    lq, gt = torch.rand(1, 3, 16, 24), torch.rand(1, 3, 64, 96)
    converted = load_official(dst, task='sr', stage=2, scale=4, **TINY)  # EMA weights first
    reference = load_official({'params_ema': ema}, task='sr', stage=2, scale=4, **TINY)
    assert torch.equal(_outputs(converted, lq), _outputs(reference, lq))
    raw = {k[len('generator.'):]: v for k, v in ckpt['state_dict'].items()
           if k.startswith('generator.')}
    from_params = load_official({'params': params}, task='sr', stage=2, scale=4, **TINY)
    assert all(torch.equal(v, from_params.state_dict()[k]) for k, v in raw.items())
    ema_raw = {k[len('generator_ema.'):]: v for k, v in ckpt['state_dict'].items()
               if k.startswith('generator_ema.')}
    assert all(torch.equal(v, reference.state_dict()[k]) for k, v in ema_raw.items())
    assert not all(torch.equal(v, raw[k]) for k, v in ema_raw.items())  # kept apart

    teacher_net = load_official(dst, task='sr', stage=1, scale=4, component='teacher', **TINY)
    teacher_ref = load_official(teacher, task='sr', stage=1, scale=4, **TINY)
    assert torch.equal(_outputs(teacher_net, lq, gt), _outputs(teacher_ref, lq, gt))


def test_params_only_source_fills_the_ema_copy_with_params(tool, tmp_path: Path):
    """No ``params_ema`` (Real-SR S1 x2/x1): evaluation's generator_ema is ``params`` itself."""
    src, dst = tmp_path / 'DiffIRS1x2.pth', tmp_path / 'out' / 'x2.pth'
    torch.save({'params': _official('sr_x2', 1, 3)}, src)
    assert tool.main([str(src), str(dst), '--task', 'sr', '--stage', '1', '--scale', '2',
                      *_arch_args(TINY)]) == 0
    ckpt = torch.load(dst, map_location='cpu', weights_only=True)
    state = ckpt['state_dict']
    assert {k.split('.', 1)[0] for k in state} == {'generator', 'generator_ema'}
    generator = {k[len('generator.'):]: v for k, v in state.items() if k.startswith('generator.')}
    assert all(torch.equal(state['generator_ema.' + k], v) for k, v in generator.items())
    meta = ckpt['meta']['diffir_mm']
    assert meta['scale'] == 2
    assert meta['generator_from'] == meta['generator_ema_from'] == 'DiffIRS1x2.pth [params]'


def test_lama_stage2_carries_its_teacher(tool, tmp_path: Path):
    s2, s1 = _official('inpaint', 2, 4, TINY_INPAINT), _official('inpaint', 1, 5, TINY_INPAINT)
    state = {'generator.' + k: v for k, v in s2.items()}
    state.update({'generatorS1.' + k: v for k, v in s1.items()})
    state['discriminator.model0.0.weight'] = torch.zeros(2, 3, 3, 3)
    src, dst = tmp_path / 'last.ckpt', tmp_path / 'inpaint.pth'
    torch.save({'state_dict': state, 'epoch': 1, 'global_step': 10}, src)
    assert tool.main([str(src), str(dst), '--task', 'inpaint', '--stage', '2',
                      *_arch_args(TINY_INPAINT)]) == 0
    ckpt = torch.load(dst, map_location='cpu', weights_only=True)
    assert {k.split('.', 1)[0] for k in ckpt['state_dict']} == {'generator', 'generator_ema',
                                                                  'teacher'}
    x, gt = torch.rand(1, 4, 32, 32), torch.rand(1, 3, 32, 32)
    for stage, component, sd in ((2, 'generator', s2), (1, 'teacher', s1)):
        ours = load_official(dst, task='inpaint', stage=stage, component=component,
                             **TINY_INPAINT)
        ref = load_official(sd, task='inpaint', stage=stage, **TINY_INPAINT)
        g = gt if stage == 1 else None
        assert torch.equal(_outputs(ours, x, g), _outputs(ref, x, g))


def test_wrong_task_fails_with_one_line(tmp_path: Path):
    src, dst = tmp_path / 'DiffIRS2.pth', tmp_path / 'out.pth'
    torch.save({'params_ema': _official('sr_x4', 2, 0)}, src)
    result = _run(str(src), str(dst), '--task', 'deblur', '--stage', '2', *_arch_args(TINY))
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('error:'), result.stderr
    assert 'stage-2 sr x4' in lines[0] and 'deblur' in lines[0]
    assert not dst.exists()


@pytest.mark.parametrize('args,found', [
    (['--task', 'sr', '--stage', '1'], 'stage-2 sr x4'),              # wrong stage
    (['--task', 'sr', '--stage', '2', '--scale', '2'], 'stage-2 sr x4'),  # wrong scale
])
def test_wrong_stage_or_scale(tool, tmp_path: Path, capsys, args, found):
    src, dst = tmp_path / 'DiffIRS2.pth', tmp_path / 'out.pth'
    torch.save({'params': _official('sr_x4', 2, 0)}, src)
    assert tool.main([str(src), str(dst), *args, *_arch_args(TINY)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and found in err[0]
    assert not dst.exists()


def test_wrong_teacher_and_missing_input(tool, tmp_path: Path, capsys):
    src, teacher, dst = tmp_path / 's2.pth', tmp_path / 's1.pth', tmp_path / 'out.pth'
    torch.save({'params_ema': _official('sr_x4', 2, 0)}, src)
    torch.save({'params_ema': _official('deblur', 1, 1)}, teacher)
    assert tool.main([str(src), str(dst), '--task', 'sr', '--stage', '2', '--teacher',
                      str(teacher), *_arch_args(TINY)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and '--teacher' in err[0] and 'stage-1 deblur' in err[0]
    assert tool.main([str(tmp_path / 'nope.pth'), str(dst), '--task', 'sr', '--stage', '2']) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and 'not found' in err[0]
    assert not dst.exists()


def test_full_size_mismatch_is_one_line(tool, tmp_path: Path, capsys):
    """A tiny file against the released preset (no --arch) still fails cleanly."""
    src, dst = tmp_path / 's2.pth', tmp_path / 'out.pth'
    torch.save({'params_ema': _official('sr_x4', 2, 0)}, src)
    assert tool.main([str(src), str(dst), '--task', 'sr', '--stage', '2']) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith('error:')


def test_refuses_to_overwrite(tool, tmp_path: Path, capsys):
    src, dst = tmp_path / 's1.pth', tmp_path / 'out.pth'
    torch.save({'params_ema': _official('deblur', 1, 0)}, src)
    dst.write_bytes(b'precious')
    args = [str(src), str(dst), '--task', 'deblur', '--stage', '1', *_arch_args(TINY)]
    assert tool.main(args) == 1
    assert 'exists' in capsys.readouterr().err and dst.read_bytes() == b'precious'
    assert tool.main(args + ['--force']) == 0
    ckpt = torch.load(dst, map_location='cpu', weights_only=True)
    assert ckpt['meta']['diffir_mm']['converted_from'] == 's1.pth'
    assert sorted(p.name for p in tmp_path.iterdir()) == ['out.pth', 's1.pth']  # no temp files


def test_usage_errors(tool, tmp_path: Path):
    with pytest.raises(SystemExit):
        tool.parse_args(['a', 'b', '--task', 'sr', '--stage', '1', '--teacher', 'c'])
    with pytest.raises(SystemExit):
        tool.parse_args(['a', 'b', '--task', 'sr', '--stage', '3'])
    assert tool.parse_arch_overrides(['dim=8', 'num_blocks=[1,2,3,4]', 'LayerNorm_type=BiasFree']
                                     ) == dict(dim=8, num_blocks=[1, 2, 3, 4],
                                               LayerNorm_type='BiasFree')


def test_mmengine_loads_the_converted_checkpoint(tool, tmp_path: Path):
    """mmengine's ``load_checkpoint`` fills generator / generator_ema / teacher strictly."""
    runner = pytest.importorskip('mmengine.runner')
    src, teacher, dst = tmp_path / 's2.pth', tmp_path / 's1.pth', tmp_path / 'out.pth'
    torch.save({'params': _official('deblur', 2, 0), 'params_ema': _official('deblur', 2, 1)},
               src)
    torch.save({'params_ema': _official('deblur', 1, 2)}, teacher)
    assert tool.main([str(src), str(dst), '--task', 'deblur', '--stage', '2', '--teacher',
                      str(teacher), *_arch_args(TINY)]) == 0
    model = torch.nn.Module()
    model.generator = build_diffir('deblur', 2, **TINY)
    model.generator_ema = build_diffir('deblur', 2, **TINY)
    model.teacher = build_diffir('deblur', 1, **TINY)
    runner.load_checkpoint(model, str(dst), map_location='cpu', strict=True)
    expected = load_official({'params_ema': _official('deblur', 2, 1)}, task='deblur', stage=2,
                             **TINY)
    lq = torch.rand(1, 3, 16, 16)
    assert torch.equal(_outputs(model.generator_ema.eval(), lq), _outputs(expected, lq))
