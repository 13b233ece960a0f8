"""ONNX export: the graphs match the PyTorch network for the same ``x_T`` on dynamic shapes."""
import json
import os

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from helpers import mmengine_checkpoint, official_checkpoint, tiny_net

from diffir_mm.archs import build_diffir, pad_to_multiple
from diffir_mm.deploy import read_sidecar
from diffir_mm.deploy.export_cli import main as export_main
from diffir_mm.deploy.onnx_export import export_onnx, graph_paths, pad_in_graph, random_ops

from .conftest import PRESETS

TOL = 1e-4
#: (batch, height, width): no side is a multiple of 8, 16 or 32 (the input multiples); the last
#: one is smaller than the padding (edge replication instead of reflection).
SIZES = ((1, 37, 45), (2, 21, 50), (1, 5, 3))


def _session(path):
    return ort.InferenceSession(path, providers=['CPUExecutionProvider'])


def _inputs(channels, batch, h, w, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return (torch.rand(batch, channels, h, w, generator=gen),
            torch.randn(batch, 256, generator=gen))


def _max_diff(onnx_out, ref):
    return float((torch.from_numpy(onnx_out) - ref).abs().max())


@pytest.mark.parametrize('size', [(37, 45), (21, 50), (5, 3), (8, 8), (7, 16), (1, 9)])
@pytest.mark.parametrize('multiple', [8, 16, 32])
def test_pad_in_graph_is_pad_to_multiple(size, multiple):
    x = torch.rand(2, 3, *size)
    np.testing.assert_array_equal(pad_in_graph(x, multiple), pad_to_multiple(x, multiple)[0])


@pytest.mark.parametrize('preset', PRESETS)
def test_graphs_match_pytorch_on_two_sizes(exports, preset):
    path, meta = exports(preset)
    net = tiny_net(preset)
    paths = graph_paths(path)
    full, prior, dirformer = (_session(paths[k]) for k in ('full', 'prior', 'dirformer'))
    for batch, h, w in SIZES:
        image, x_t = _inputs(meta['in_channels'], batch, h, w)
        with torch.no_grad():
            ref = net(image, noise=x_t)
            ipr = net.estimate_prior(image, noise=x_t)
            restored = net.restore(image, ipr)
        feeds = {'image': image.numpy(), 'x_T': x_t.numpy()}
        out = full.run(['restored'], feeds)[0]
        assert out.shape == (batch, 3, h * net.scale, w * net.scale)
        assert _max_diff(out, ref) < TOL, (preset, h, w)
        assert _max_diff(prior.run(['ipr'], feeds)[0], ipr) < TOL
        out = dirformer.run(['restored'], {'image': image.numpy(), 'ipr': ipr.numpy()})[0]
        assert _max_diff(out, restored) < TOL


@pytest.mark.parametrize('preset', PRESETS)
def test_graphs_pass_the_checker_and_hold_no_random_operator(exports, preset):
    path, meta = exports(preset)
    for kind, graph_path in graph_paths(path).items():
        model = onnx.load(graph_path)
        onnx.checker.check_model(model, full_check=True)
        assert random_ops(model) == []
        assert [i.name for i in model.graph.input] == meta['graphs'][kind]['inputs']
        assert [o.name for o in model.graph.output] == meta['graphs'][kind]['outputs']
        dims = [d.dim_param or d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
        assert isinstance(dims[0], str) and isinstance(dims[2], str) and isinstance(dims[3], str)
        assert dims[1] == meta['in_channels']


def test_random_ops_finds_a_random_operator():
    node = onnx.helper.make_node('RandomNormalLike', ['x'], ['y'])
    graph = onnx.helper.make_graph(
        [node], 'g', [onnx.helper.make_tensor_value_info('x', onnx.TensorProto.FLOAT, [2])],
        [onnx.helper.make_tensor_value_info('y', onnx.TensorProto.FLOAT, [2])])
    assert random_ops(onnx.helper.make_model(graph)) == ['RandomNormalLike']


@pytest.mark.parametrize('preset', PRESETS)
def test_sidecar_describes_the_network(exports, preset):
    path, _ = exports(preset)
    meta = read_sidecar(path)
    net = tiny_net(preset)
    assert (meta['task'], meta['scale']) == (net.task, net.scale)
    assert meta['in_channels'] == (4 if preset == 'inpaint' else 3)
    assert meta['input_multiple'] == net.input_multiple
    assert meta['prior_unshuffle'] == net.lq_unshuffle
    assert meta['normalisation']['mean'] == [0.0] and meta['normalisation']['std'] == [255.0]
    assert meta['opset'] == 17 and meta['dtype'] == 'float32'
    assert sorted(meta['graphs']) == ['dirformer', 'full', 'prior']
    for graph in meta['graphs'].values():
        assert os.path.isfile(graph['path'])


def test_official_and_our_checkpoints_export_the_same_network(tmp_path, capsys):
    net = tiny_net('sr_x2', seed=3)
    torch.save(official_checkpoint(net), tmp_path / 'official.pth')
    torch.save(mmengine_checkpoint(tiny_net('sr_x2', 4), net), tmp_path / 'ours.pth')
    image, x_t = _inputs(3, 1, 19, 23)
    with torch.no_grad():
        ref = net(image, noise=x_t)
    for name in ('official', 'ours'):
        out_path = tmp_path / name / 'sr.onnx'
        assert export_main([str(tmp_path / f'{name}.pth'), str(out_path), '--task', 'sr',
                            '--scale', '2', '--graphs', 'full']) == 0
        assert 'exported sr x2' in capsys.readouterr().out
        out = _session(str(out_path)).run(None, {'image': image.numpy(),
                                                 'x_T': x_t.numpy()})[0]
        assert _max_diff(out, ref) < TOL
        assert json.loads((tmp_path / name / 'sr.json').read_text())['source'] == f'{name}.pth'


def test_config_source_records_the_data_preprocessor_norm(tmp_path):
    pytest.importorskip('mmengine')
    cfg = tmp_path / 'tiny.py'
    cfg.write_text(
        "model = dict(type='BaseEditModel',\n"
        "    generator=dict(type='DiffIRS2Net', task='deblur', scale=1, dim=8,\n"
        "        num_blocks=[1, 1, 1, 1], num_refinement_blocks=1, n_encoder_res=1,\n"
        "        ffn_expansion_factor=2.0),\n"
        "    data_preprocessor=dict(type='DataPreprocessor', mean=[127.5, 127.5, 127.5],\n"
        "        std=[127.5, 127.5, 127.5]))\n")
    torch.save(mmengine_checkpoint(tiny_net('deblur')), tmp_path / 'w.pth')
    out_path = tmp_path / 'cfg.onnx'
    assert export_main([str(cfg), str(out_path), '--checkpoint', str(tmp_path / 'w.pth')]) == 0
    meta = read_sidecar(str(out_path))
    assert meta['normalisation']['mean'] == [127.5] * 3
    assert meta['normalisation']['std'] == [127.5] * 3


@pytest.mark.parametrize('args, message', [
    (['ckpt', '--stage', '1'], 'only stage 2'),
    (['missing.pth'], 'missing.pth: no such file'),
    (['ckpt', '--task', 'deblur'], 'deblur model was requested'),
    (['preset', '--task', 'sr'], "'preset' needs --task and --random-init"),
    (['ckpt', '--big', '--task', 'sr'], '--big applies to --task inpaint only'),
    (['ckpt', '--checkpoint', 'ckpt'], '--checkpoint applies to a config source'),
])
def test_export_errors_are_one_line(tmp_path, capsys, args, message):
    ckpt = tmp_path / 'sr.pth'
    torch.save(official_checkpoint(tiny_net('sr_x4')), ckpt)
    args = [str(ckpt) if a == 'ckpt' else a for a in args]
    assert export_main([args[0], str(tmp_path / 'x.onnx'), *args[1:]]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith('error: ') and message in err[0], err
    assert not (tmp_path / 'x.onnx').exists()


def test_fp16_export_runs_in_onnxruntime(tmp_path):
    net = tiny_net('deblur')
    meta = export_onnx(tiny_net('deblur'), str(tmp_path / 'half.onnx'), fp16=True,
                       graphs=('full',))
    assert meta['dtype'] == 'float16'
    image, x_t = _inputs(3, 1, 19, 29)
    with torch.no_grad():
        ref = net(image, noise=x_t)
    out = _session(str(tmp_path / 'half.onnx')).run(
        None, {'image': image.half().numpy(), 'x_T': x_t.half().numpy()})[0]
    assert out.dtype == np.float16
    assert _max_diff(out.astype(np.float32), ref) < 1e-2


def test_dynamo_exporter_matches_pytorch(tmp_path):
    pytest.importorskip('onnxscript')
    net = tiny_net('sr_x4')
    export_onnx(tiny_net('sr_x4'), str(tmp_path / 'd.onnx'), exporter='dynamo', graphs=('full',))
    session = _session(str(tmp_path / 'd.onnx'))
    for batch, h, w in SIZES[:2]:
        image, x_t = _inputs(3, batch, h, w)
        with torch.no_grad():
            ref = net(image, noise=x_t)
        out = session.run(None, {'image': image.numpy(), 'x_T': x_t.numpy()})[0]
        assert _max_diff(out, ref) < TOL


def test_full_size_big_inpainting_preset(tmp_path):
    """The released big-inpainting architecture (random weights) on two non-multiple sizes."""
    torch.manual_seed(0)
    net = build_diffir('inpaint_big', stage=2).eval()
    export_onnx(net, str(tmp_path / 'big.onnx'), graphs=('full',))
    session = _session(str(tmp_path / 'big.onnx'))
    for batch, h, w in ((1, 61, 70), (1, 45, 52)):
        image, x_t = _inputs(4, batch, h, w)
        image[:, 3:] = (image[:, 3:] > 0.7).float()
        image[:, :3] *= 1 - image[:, 3:]
        with torch.no_grad():
            ref = net(image, noise=x_t)
        out = session.run(None, {'image': image.numpy(), 'x_T': x_t.numpy()})[0]
        assert _max_diff(out, ref) < TOL
