"""A checkpoint written by tools/train.py (``message_hub``, ``optimizer``, ``rng_state``, ...)
works in every entry point: diffir-restore, the inferencer, the converter, load_official, and
the tensor-only readers of spandrel hosts (spandrel's ``ModelLoader``, ``weights_only=True``).

The run is the real stage-2 deblurring recipe (``configs/diffir_deblur_s2.py``: DiffIRS2 editor,
EMA, frozen teacher from an official-layout stage-1 file) shrunk to a tiny network and two
iterations.
"""
import importlib.util
import os
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from helpers import (NO_EVAL_CONFIG_LINES, REPO_ROOT, TINY, TOOLS_DIR, degrade,
                     make_paired_images, run_python, sample_image)

from diffir_mm.archs import build_diffir
from diffir_mm.checkpoint import load_official, ours_to_official, read_checkpoint, read_network

ARCH = dict(TINY, num_refinement_blocks=1)


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """``(inference config, iter_2.pth, its generator_ema state)`` of a two-iteration run."""
    root = tmp_path_factory.mktemp('train_ckpt')
    make_paired_images(str(root / 'train'), num=2, size=64, mode='blur')
    torch.manual_seed(0)
    s1 = build_diffir('deblur', 1, **ARCH)
    torch.save({'params': ours_to_official(s1.state_dict())}, root / 'net_s1.pth')
    arch = ', '.join(f'{k}={v!r}' for k, v in ARCH.items())
    cfg = root / 'tiny_deblur_s2.py'
    cfg.write_text(f"""
_base_ = ['{REPO_ROOT}/configs/diffir_deblur_s2.py']
model = dict(generator=dict({arch}), stage1_checkpoint='{root / 'net_s1.pth'}',
             train_cfg=dict(encoder_iters=1, progressive=dict(iters=[2], mini_batch_sizes=[2],
                                                              gt_sizes=[32])))
train_pipeline = _base_.train_pipeline
for _step in train_pipeline:
    if _step['type'] == 'PairedRandomCrop':
        _step['gt_patch_size'] = 48
del _step
train_dataloader = dict(batch_size=2, num_workers=0, dataset=dict(
    data_root='{root}', data_prefix=dict(img='train/lq', gt='train/gt'), pipeline=train_pipeline))
train_cfg = dict(max_iters=2, val_interval=1000)
{NO_EVAL_CONFIG_LINES}default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=2))
visualizer = dict(vis_backends=[dict(type='LocalVisBackend')])
randomness = dict(seed=0)
""")
    work = root / 'work'
    run_python([osp.join(TOOLS_DIR, 'train.py'), str(cfg), '--work-dir', str(work)], timeout=900)
    ckpt = work / 'iter_2.pth'
    full = read_checkpoint(ckpt)
    assert {'message_hub', 'meta', 'optimizer', 'rng_state', 'state_dict'} <= set(full)
    ema = {k[len('generator_ema.'):]: v for k, v in full['state_dict'].items()
           if k.startswith('generator_ema.')}
    assert ema
    infer_cfg = root / 'tiny_deblur_s2_infer.py'  # the recipe with the tiny network, no data
    infer_cfg.write_text(f"_base_ = ['{REPO_ROOT}/configs/diffir_deblur_s2.py']\n"
                         f"model = dict(generator=dict({arch}))\n")
    return infer_cfg, ckpt, ema


@pytest.fixture(scope='module')
def photo(tmp_path_factory):
    path = tmp_path_factory.mktemp('photo') / 'coffee.png'
    cv2.imwrite(str(path), degrade(sample_image('coffee', 48), 'blur')[..., ::-1])
    return path


def _ema_net(ema):
    net = build_diffir('deblur', 2, **ARCH).eval()
    net.load_state_dict(ema)
    return net


def test_diffir_restore_restores_the_image(trained, photo, tmp_path, capsys):
    from diffir_mm.cli.restore import main

    _, ckpt, ema = trained
    out = tmp_path / 'out'
    assert main([str(photo), '-o', str(out), '--checkpoint', str(ckpt), '--seed', '3',
                 '--no-progress']) == 0, capsys.readouterr().err
    restored = cv2.imread(str(out / 'coffee.png'))[..., ::-1].astype(np.float64)
    lq = torch.from_numpy(cv2.imread(str(photo))[..., ::-1].copy()).permute(2, 0, 1)[None] / 255.
    with torch.no_grad():  # the trained EMA network, run by hand
        expected = _ema_net(ema)(lq.float(), generator=torch.Generator().manual_seed(3))
    expected = (expected[0].permute(1, 2, 0).clamp(0, 1).numpy() * 255).round()
    assert np.abs(restored - expected).max() <= 1


def test_load_official_reads_the_ema_network(trained):
    _, ckpt, ema = trained
    net = load_official(ckpt, task='deblur', stage=2, **ARCH)
    assert all(torch.equal(v, ema[k]) for k, v in net.state_dict().items())
    assert read_network(ckpt).source == 'iter_2.pth [generator_ema]'


def test_converter_converts_it(trained, tmp_path, capsys):
    spec = importlib.util.spec_from_file_location(
        '_convert_official_ckpt', osp.join(TOOLS_DIR, 'convert_official_ckpt.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    _, ckpt, ema = trained
    dst = tmp_path / 'converted.pth'
    arch = [f'{k}={v!r}'.replace(' ', '') for k, v in ARCH.items()]
    assert tool.main([str(ckpt), str(dst), '--task', 'deblur', '--stage', '2',
                      '--arch', *arch]) == 0, capsys.readouterr().err
    converted = read_checkpoint(dst)
    assert 'message_hub' not in converted
    back = read_network(dst).state
    assert back.keys() == ema.keys() and all(torch.equal(v, ema[k]) for k, v in back.items())


def test_inferencer_restores_with_it(trained, photo, tmp_path):
    import diffir_mm.registration  # noqa: F401
    from mmagic.apis import MMagicInferencer

    cfg, ckpt, ema = trained
    inferencer = MMagicInferencer(model_config=str(cfg), model_ckpt=str(ckpt), device='cpu')
    out = tmp_path / 'restored.png'
    inferencer.infer(img=str(photo), result_out_dir=str(out))
    assert cv2.imread(str(out)).shape == (48, 48, 3)
    model = inferencer.inferencer.inferencer.model
    loaded = model.generator_ema.state_dict()
    assert all(torch.equal(v, loaded[k]) for k, v in ema.items())
    assert os.path.isfile(ckpt)  # used in place, not converted


def test_tensor_only_readers_open_it(trained):
    """spandrel's own reader (chaiNNer) and torch's weights-only reader without our allow-list
    (ComfyUI) open the file; spandrel's model is the trained EMA network."""
    spandrel = pytest.importorskip('spandrel', reason='needs spandrel (requirements/tests.txt)')
    import diffir_mm.spandrel as ds

    _, ckpt, ema = trained
    plain = torch.load(ckpt, weights_only=True)
    assert plain['state_dict'].keys() == read_checkpoint(ckpt)['state_dict'].keys()
    registry = spandrel.ArchRegistry()
    ds.install(registry)
    model = spandrel.ModelLoader(registry=registry).load_from_file(ckpt)
    assert model.purpose == 'Restoration'
    image = torch.rand(1, 3, 24, 24, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = _ema_net(ema)(image, noise=torch.randn(
            1, 256, generator=torch.Generator().manual_seed(ds.SEED))).clamp(0, 1)
    assert (model(image) - expected).abs().max().item() <= 1e-6
