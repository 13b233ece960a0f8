"""Restorer: construction from networks / checkpoints / configs, seeding, batching."""
import re
import sys

import numpy as np
import pytest
import torch
from helpers import official_checkpoint, tiny_net, write_tiny_inference_config

from diffir_mm.archs import CheckpointMismatchError, DiffIRS2Net, infer_arch_kwargs, read_network
from diffir_mm.inference import Restorer


def _img(h=24, w=32, seed=0):
    return np.random.default_rng(seed).random((h, w, 3), dtype=np.float32)


def test_same_seed_same_output_and_different_seed_differs():
    r = Restorer(tiny_net('deblur'), device='cpu')
    img = _img()
    a, b = r.restore(img, seed=3), r.restore(img, seed=3)
    np.testing.assert_array_equal(a, b)
    c = r.restore(img, seed=4)
    assert np.abs(a - c).max() > 0
    # the default seed is the restorer's
    np.testing.assert_array_equal(Restorer(tiny_net('deblur'), device='cpu', seed=3).restore(img),
                                  a)
    # a generator: the start vectors are drawn from it
    np.testing.assert_array_equal(r.restore(img, seed=torch.Generator().manual_seed(3)), a)
    unseeded = Restorer(tiny_net('deblur'), device='cpu', seed=None)
    assert np.abs(unseeded.restore(img) - unseeded.restore(img)).max() > 0


def test_seed_matches_the_network_generator_call():
    net = tiny_net('sr_x4')
    img = _img(16, 20)
    out = Restorer(net, device='cpu').restore(img, seed=7)
    x = torch.from_numpy(img).permute(2, 0, 1)[None].contiguous()
    with torch.no_grad():
        ref = net(x, generator=torch.Generator().manual_seed(7))
    assert out.shape == (64, 80, 3)
    np.testing.assert_array_equal(out, ref[0].permute(1, 2, 0).numpy())


def test_batch_results_do_not_depend_on_batch_composition():
    r = Restorer(tiny_net('deblur'), device='cpu', seed=5)
    imgs = [_img(seed=i) for i in range(3)]
    batch = r.restore_batch(imgs)
    for img, out in zip(imgs, batch):
        np.testing.assert_allclose(out, r.restore(img), atol=1e-5)
    per_image = r.restore_batch(imgs, seed=[5, 6, 7])
    np.testing.assert_array_equal(per_image[0], batch[0])
    with pytest.raises(ValueError, match='one size'):
        r.restore_batch([_img(), _img(8, 8)])


def test_uint8_and_uint16_arrays_are_accepted():
    r = Restorer(tiny_net('deblur'), device='cpu')
    img8 = (np.random.default_rng(0).random((16, 16, 3)) * 255).astype(np.uint8)
    np.testing.assert_array_equal(r.restore(img8), r.restore(img8.astype(np.float32) / 255))
    img16 = img8.astype(np.uint16) * 257
    np.testing.assert_allclose(r.restore(img16), r.restore(img8), atol=1e-6)


def test_tiled_restorer_output_size_and_closeness():
    r = Restorer(tiny_net('sr_x2'), device='cpu', tile=32, tile_overlap=8, tile_batch=2)
    full = Restorer(tiny_net('sr_x2'), device='cpu')
    img = _img(50, 70)
    out = r.restore(img)
    assert out.shape == (100, 140, 3)
    assert np.abs(out - full.restore(img)).mean() < 0.01


def test_inpainting_keeps_known_pixels_exactly():
    r = Restorer(tiny_net('inpaint'), device='cpu')
    img = _img(32, 32)
    mask = np.zeros((32, 32), np.float32)
    mask[8:20, 4:30] = 1
    out = r.restore(img, mask=mask)
    np.testing.assert_array_equal(out[mask == 0], img[mask == 0])
    assert np.abs(out[mask == 1] - img[mask == 1]).max() > 0
    with pytest.raises(ValueError, match='mask'):
        r.restore(img)


@pytest.mark.parametrize('name', ['deblur.pth', 'deblur_ours.pth'])
def test_from_checkpoint_official_and_ours(ckpt_dir, name):
    ref = Restorer(tiny_net('deblur'), device='cpu').restore(_img())
    r = Restorer.from_checkpoint(ckpt_dir / name, device='cpu')  # ours: EMA weights preferred
    assert r.task == 'deblur' and r.scale == 1
    np.testing.assert_array_equal(r.restore(_img()), ref)
    r2 = Restorer.from_preset('deblur', checkpoint=ckpt_dir / name, device='cpu')
    np.testing.assert_array_equal(r2.restore(_img()), ref)


def test_from_checkpoint_reads_task_and_scale(ckpt_dir):
    r = Restorer.from_checkpoint(ckpt_dir / 'sr_x2.pth', device='cpu')
    assert (r.task, r.scale) == ('sr', 2)
    assert r.restore(_img(16, 16)).shape == (32, 32, 3)


@pytest.mark.parametrize('ckpt,task,scale,message', [
    ('sr_x2.pth', 'deblur', 4, 'sr_x2.pth [params_ema] holds a stage-2 sr x2 model, dim=8, but a '
                               'stage-2 deblur model was requested'),
    ('sr_x2.pth', 'sr', 4, 'holds a stage-2 sr x2 model, dim=8, but a stage-2 sr x4 model was'),
    ('deblur.pth', 'sr', 4, "holds a stage-2 deblur model"),
    ('not_diffir.pth', 'deblur', 4, 'not a DiffIR checkpoint'),
    ('garbage.pth', 'deblur', 4, 'cannot read checkpoint'),
    ('missing.pth', 'deblur', 4, 'checkpoint not found'),
])
def test_wrong_checkpoints_are_refused_in_one_line(ckpt_dir, ckpt, task, scale, message):
    errors = (CheckpointMismatchError, FileNotFoundError)
    with pytest.raises(errors, match=re.escape(message)) as info:
        Restorer.from_checkpoint(ckpt_dir / ckpt, task=task, scale=scale, device='cpu')
    assert '\n' not in str(info.value)
    if ckpt == 'sr_x2.pth':  # the right scale is accepted
        assert Restorer.from_checkpoint(ckpt_dir / ckpt, task='sr', scale=2).scale == 2


def test_stage1_checkpoint_is_refused():
    from diffir_mm.archs import build_diffir, ours_to_official
    s1 = build_diffir('deblur', stage=1, dim=8, num_blocks=[1, 1, 1, 1], num_refinement_blocks=1,
                      n_encoder_res=1)
    with pytest.raises(CheckpointMismatchError, match='stage-2'):
        Restorer.from_checkpoint({'params': ours_to_official(s1.state_dict())}, device='cpu')


def test_infer_arch_kwargs_roundtrip():
    net = tiny_net('sr_x1')
    kw = infer_arch_kwargs(read_network(official_checkpoint(net)))
    assert kw['task'] == 'sr' and kw['scale'] == 1 and kw['dim'] == 8
    assert kw['num_blocks'] == [1, 1, 1, 1] and kw['n_encoder_res'] == 1
    assert kw['LayerNorm_type'] == 'BiasFree' and kw['ffn_expansion_factor'] == 2.2
    assert (kw['timesteps'], kw['linear_start'], kw['linear_end']) == (4, 0.1, 0.99)
    torch.manual_seed(1)
    wide = DiffIRS2Net(**dict(kw, dim=16, ffn_expansion_factor=2.66, num_blocks=[1, 2, 1, 3]))
    back = infer_arch_kwargs(read_network({'params': wide.state_dict()}))  # our naming too
    assert (back['dim'], back['ffn_expansion_factor'], back['num_blocks']) == (16, 2.66,
                                                                               [1, 2, 1, 3])


def test_from_config_file(tmp_path, ckpt_dir):
    pytest.importorskip('mmengine')
    cfg = write_tiny_inference_config(tmp_path / 'tiny_deblur.py')
    before = set(sys.modules)
    r = Restorer.from_config(cfg, ckpt_dir / 'deblur.pth', device='cpu')
    assert not any(m.startswith(('mmagic', 'mmcv')) for m in set(sys.modules) - before)
    ref = Restorer(tiny_net('deblur'), device='cpu').restore(_img())
    np.testing.assert_allclose(r.restore(_img()), ref, atol=1e-6)
    with pytest.raises(CheckpointMismatchError, match='sr x2'):
        Restorer.from_config(cfg, ckpt_dir / 'sr_x2.pth', device='cpu')


def test_input_norm_follows_a_data_preprocessor():
    net = tiny_net('deblur')
    plain = Restorer(net, device='cpu')
    # mean 0 / std 255 on the 0..255 scale is the identity on [0, 1]
    same = Restorer(net, device='cpu', input_norm=([0, 0, 0], [255, 255, 255]))
    np.testing.assert_array_equal(plain.restore(_img()), same.restore(_img()))
    other = Restorer(net, device='cpu', input_norm=(127.5, 127.5))
    assert np.abs(other.restore(_img()) - plain.restore(_img())).max() > 0


def test_task_names_are_task_and_scale():
    with pytest.raises(ValueError, match='task must be one of'):
        Restorer.from_preset('sr_x2', random_init=True)
    with pytest.raises(ValueError, match='SR scale'):
        Restorer.from_preset('sr', scale=3, random_init=True)


def test_rejects_non_stage2_modules():
    with pytest.raises(TypeError, match='stage-2'):
        Restorer(torch.nn.Conv2d(3, 3, 1), device='cpu')


def test_compile_option_compiles_the_blocks_in_place(monkeypatch):
    from diffir_mm.archs import DynamicTransformerBlock
    from diffir_mm.inference import compilation

    def blocks(restorer):
        return [m for m in restorer.network.modules() if isinstance(m, DynamicTransformerBlock)]

    plain = Restorer(tiny_net('deblur'), device='cpu')  # 'auto': off on the CPU
    assert not plain.compiled and all(b._compiled_call_impl is None for b in blocks(plain))
    on = Restorer(tiny_net('deblur'), device='cpu', compile='on')
    assert on.compiled and ', compiled,' in on.describe()
    assert blocks(on) and all(b._compiled_call_impl is not None for b in blocks(on))
    monkeypatch.setitem(compilation.AUTO_COMPILE, 'cpu', True)  # the one-line switch
    assert Restorer(tiny_net('deblur'), device='cpu').compiled
    assert compilation.resolve_compile('auto', 'cuda') is False
    with pytest.raises(ValueError, match='compile must be one of'):
        compilation.resolve_compile('sometimes', 'cpu')
