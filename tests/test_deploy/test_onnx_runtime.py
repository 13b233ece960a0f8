"""ONNX Runtime backend: the Restorer and diffir-restore give the PyTorch backend's results."""
import json
import os
import shutil

import cv2
import numpy as np
import pytest
import torch
from helpers import TOOLS_DIR, official_checkpoint, run_python, sample_image, tiny_net, write

from diffir_mm.cli.restore import main as restore_main
from diffir_mm.deploy import SidecarError
from diffir_mm.deploy.onnx_runtime import OnnxRestorer, OnnxRuntimeNetwork
from diffir_mm.inference import Restorer

PHOTOS = ('astronaut', 'coffee', 'chelsea')


def _image(h=37, w=45, seed=0):
    return np.random.default_rng(seed).random((h, w, 3), dtype=np.float32)


@pytest.mark.parametrize('preset', ['deblur', 'sr_x4', 'inpaint'])
@pytest.mark.parametrize('tile', [None, 16])
def test_restorer_matches_the_pytorch_backend(exports, preset, tile):
    path, _ = exports(preset)
    kwargs = dict(tile=tile, tile_overlap=4, seed=5)
    ours = OnnxRestorer(path, **kwargs)
    ref = Restorer(tiny_net(preset), device='cpu', **kwargs)
    mask = None
    if preset == 'inpaint':
        mask = np.zeros((37, 45), np.float32)
        mask[5:20, 10:40] = 1
    out = ours.restore(_image(), mask=mask)
    np.testing.assert_allclose(out, ref.restore(_image(), mask=mask), atol=1e-4)
    assert out.shape == (37 * ref.scale, 45 * ref.scale, 3)


def test_network_interface_matches_diffir_s2_net(exports):
    path, meta = exports('sr_x2')
    net, ort_net = tiny_net('sr_x2'), OnnxRuntimeNetwork(path)
    assert (ort_net.task, ort_net.scale, ort_net.input_multiple, ort_net.lq_unshuffle) == (
        net.task, net.scale, net.input_multiple, net.lq_unshuffle)
    lq, noise = torch.rand(2, 3, 19, 27), torch.randn(2, 256)
    with torch.no_grad():
        prior = net.estimate_prior(lq, noise=noise)
        torch.testing.assert_close(ort_net.estimate_prior(lq, noise=noise), prior, atol=1e-4,
                                   rtol=0)
        torch.testing.assert_close(ort_net(lq, noise=noise), net(lq, noise=noise), atol=1e-4,
                                   rtol=0)
    same = ort_net.estimate_prior(lq, generator=torch.Generator().manual_seed(1))
    again = ort_net.estimate_prior(lq, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(same, again, atol=0, rtol=0)
    with pytest.raises(ValueError, match='noise must have shape'):
        ort_net.estimate_prior(lq, noise=torch.randn(1, 256))


@pytest.fixture(scope='module')
def photo_run(tmp_path_factory):
    """Photos, a tiny SR x2 checkpoint (official layout) and its export by tools/export_onnx.py."""
    root = tmp_path_factory.mktemp('cli')
    (root / 'photos').mkdir()
    for i, name in enumerate(PHOTOS):
        write(root / 'photos' / f'{name}.png', sample_image(name, 40 + 7 * i)[..., ::-1])
    torch.save(official_checkpoint(tiny_net('sr_x2')), root / 'sr_x2.pth')
    proc = run_python([os.path.join(TOOLS_DIR, 'export_onnx.py'), str(root / 'sr_x2.pth'),
                       str(root / 'onnx' / 'sr_x2.onnx'), '--dynamic'])
    assert 'exported sr x2 (sr_x2.pth)' in proc.stdout
    return root


@pytest.mark.parametrize('tile', [[], ['--tile', '24', '--tile-overlap', '8']])
def test_cli_onnxruntime_writes_the_pytorch_files(photo_run, tile):
    root = photo_run
    name = 'tiled' if tile else 'whole'
    common = [str(root / 'photos'), '--no-progress', '-q', *tile]
    assert restore_main([*common, '-o', str(root / f'pt_{name}'), '--checkpoint',
                         str(root / 'sr_x2.pth')]) == 0
    assert restore_main([*common, '-o', str(root / f'ort_{name}'), '--backend', 'onnxruntime',
                         '--onnx', str(root / 'onnx' / 'sr_x2.onnx'), '--threads', '1']) == 0
    names = sorted(os.listdir(root / 'photos'))
    assert sorted(os.listdir(root / f'ort_{name}')) == names
    for file in names:
        ref = cv2.imread(str(root / f'pt_{name}' / file)).astype(int)
        out = cv2.imread(str(root / f'ort_{name}' / file)).astype(int)
        src = cv2.imread(str(root / 'photos' / file))
        assert out.shape == (src.shape[0] * 2, src.shape[1] * 2, 3)
        assert np.abs(out - ref).max() <= 1, file


def _error_lines(capsys):
    return [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith('error:')]


def _broken_copy(root, tmp_path, edit):
    dst = tmp_path / 'onnx'
    shutil.copytree(root / 'onnx', dst)
    side = dst / 'sr_x2.json'
    meta = json.loads(side.read_text())
    edit(meta, dst)
    side.write_text(json.dumps(meta))
    return dst / 'sr_x2.onnx'


@pytest.mark.parametrize('case, message', [
    ('missing_model', 'ONNX model not found'),
    ('no_sidecar', 'no sidecar'),
    ('channels', 'input image has 3 channels but the sidecar says in_channels = 4'),
    ('names', 'graph inputs'),
    ('missing_graph', 'graphs.dirformer file'),
    ('no_task', 'missing field(s) task'),
    ('bad_json', 'not valid JSON'),
    ('wrong_task', 'is a sr export, not deblur'),
    ('wrong_scale', 'is an SR x2 export, not x4'),
])
def test_cli_bad_onnx_input_is_one_line(photo_run, tmp_path, capsys, case, message):
    root = photo_run
    edits = {
        'channels': lambda m, d: m.update(in_channels=4),
        'names': lambda m, d: m['graphs']['prior'].update(inputs=['image', 'noise']),
        'missing_graph': lambda m, d: os.remove(d / 'sr_x2.dirformer.onnx'),
        'no_task': lambda m, d: m.pop('task'),
    }
    model = root / 'onnx' / 'sr_x2.onnx'
    extra = []
    if case == 'missing_model':
        model = tmp_path / 'none.onnx'
    elif case == 'no_sidecar':
        model = _broken_copy(root, tmp_path, lambda m, d: None)
        os.remove(model.with_suffix('.json'))
    elif case == 'bad_json':
        model = _broken_copy(root, tmp_path, lambda m, d: None)
        model.with_suffix('.json').write_text('{"format": ')
    elif case in edits:
        model = _broken_copy(root, tmp_path, edits[case])
    else:
        extra = ['--task', 'deblur'] if case == 'wrong_task' else ['--task', 'sr', '--scale', '4']
    code = restore_main([str(root / 'photos'), '-o', str(tmp_path / 'out'), '--backend',
                         'onnxruntime', '--onnx', str(model), *extra])
    errors = _error_lines(capsys)
    assert code == 2 and len(errors) == 1 and message in errors[0], errors
    assert not (tmp_path / 'out').exists()


@pytest.mark.parametrize('args, message', [
    (['--backend', 'onnxruntime'], '--backend onnxruntime needs --onnx'),
    (['--onnx', 'x.onnx'], '--onnx needs --backend onnxruntime'),
    (['--backend', 'onnxruntime', '--onnx', 'ONNX', '--checkpoint', 'x.pth'],
     '--checkpoint does not apply to --backend onnxruntime'),
    (['--backend', 'onnxruntime', '--onnx', 'ONNX', '--precision', 'bf16'],
     '--precision applies to the pytorch backend'),
    (['--backend', 'onnxruntime', '--onnx', 'ONNX', '--device', 'cuda'],
     'runs on the CPU'),
    (['--backend', 'onnxruntime', '--onnx', 'ONNX', '--compile', 'on'],
     '--compile on applies to the pytorch backend'),
])
def test_cli_backend_flags_are_checked(photo_run, tmp_path, capsys, args, message):
    args = [str(photo_run / 'onnx' / 'sr_x2.onnx') if a == 'ONNX' else a for a in args]
    assert restore_main([str(photo_run / 'photos'), '-o', str(tmp_path / 'o'), *args]) == 2
    errors = _error_lines(capsys)
    assert len(errors) == 1 and message in errors[0], errors


def test_sidecar_error_is_a_value_error():
    assert issubclass(SidecarError, ValueError)
