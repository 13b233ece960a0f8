"""build_restorer: one way from model arguments to a Restorer (diffir-restore and diffir-app)."""
import numpy as np
import pytest
from helpers import tiny_net, write_tiny_inference_config

from diffir_mm.checkpoint import CheckpointMismatchError
from diffir_mm.inference.loading import build_restorer
from diffir_mm.inference.restorer import Restorer


def test_a_checkpoint_gives_its_network_with_the_settings(ckpt_dir):
    restorer = build_restorer(checkpoint=str(ckpt_dir / 'deblur.pth'), device='cpu', tile=16,
                              tile_overlap=4, seed=3, precision='fp32')
    assert (restorer.task, restorer.tile, restorer.tile_overlap, restorer.seed) == \
        ('deblur', 16, 4, 3)
    image = np.random.default_rng(0).random((24, 24, 3), dtype=np.float32)
    expected = Restorer(tiny_net('deblur'), device='cpu', tile=16, tile_overlap=4, seed=3)
    np.testing.assert_allclose(restorer.restore(image), expected.restore(image), atol=1e-6)


def test_task_and_scale_are_checked(ckpt_dir):
    assert build_restorer(checkpoint=str(ckpt_dir / 'sr_x2.pth'), task='sr', scale=2).scale == 2
    with pytest.raises(CheckpointMismatchError, match='sr x2 model.*sr x4 model was requested'):
        build_restorer(checkpoint=str(ckpt_dir / 'sr_x2.pth'), task='sr')


def test_a_config_gives_the_preprocessor_normalisation(tmp_path, ckpt_dir):
    pytest.importorskip('mmengine')
    cfg = write_tiny_inference_config(tmp_path / 'tiny.py', mean=(10., 20., 30.),
                                      std=(255., 200., 255.))
    restorer = build_restorer(config=str(cfg), checkpoint=str(ckpt_dir / 'deblur.pth'))
    expected = Restorer(tiny_net('deblur'), input_norm=([10., 20., 30.], [255., 200., 255.]))
    image = np.random.default_rng(0).random((16, 16, 3), dtype=np.float32)
    np.testing.assert_allclose(restorer.restore(image), expected.restore(image), atol=1e-6)


@pytest.mark.parametrize('kwargs,message', [
    (dict(task='deblur'), '^--checkpoint is required$'),
    (dict(), r'^give --checkpoint \(and optionally --task\) or --config$'),
    (dict(checkpoint='x.pth', backend='tensorrt'), "backend must be one of .*'tensorrt'"),
])
def test_no_model_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_restorer(**kwargs)


def test_random_init_builds_the_released_architecture(monkeypatch):
    built = []
    monkeypatch.setattr(Restorer, '__init__', lambda self, net, **kw: built.append((net, kw)))
    build_restorer(task='sr', scale=2, random_init=True, seed=5)
    net, settings = built[0]
    assert (net.task, net.scale, settings) == ('sr', 2, dict(seed=5))
    assert sum(p.numel() for p in net.parameters()) > 10 * sum(
        p.numel() for p in tiny_net('sr_x2').parameters())
    assert not net.training
