"""Tiled restoration under one global prior (diffir_mm.inference.tiling)."""
import pytest
import torch
import torch.nn.functional as F
from helpers import tiny_net

from diffir_mm.inference import estimate_global_prior, prior_input, restore_tiled, tile_windows
from diffir_mm.inference.tiling import tile_starts


def _noise(batch=1, seed=0):
    return torch.randn(batch, 256, generator=torch.Generator().manual_seed(seed))


def _input(preset, b, h, w, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(b, 4 if preset.startswith('inpaint') else 3, h, w, generator=g)
    if preset.startswith('inpaint'):
        x[:, 3] = (x[:, 3] > 0.7).float()
        x[:, :3] *= 1 - x[:, 3:]
    return x


class FakeNet(torch.nn.Module):
    """Position-equivariant stand-in: nearest upsampling (SR) or identity, constant prior."""

    def __init__(self, task='sr', scale=4, multiple=8):
        super().__init__()
        self.task, self.scale, self.input_multiple, self.lq_unshuffle = task, scale, multiple, 1
        self.restore_calls = []
        self.prior_calls = []

    def estimate_prior(self, lq, noise=None, generator=None):
        self.prior_calls.append(tuple(lq.shape))
        return torch.arange(lq.shape[0], dtype=torch.float32)[:, None].repeat(1, 256)

    def restore(self, x, prior):
        self.restore_calls.append((tuple(x.shape), prior.clone()))
        return F.interpolate(x, scale_factor=self.scale, mode='nearest') if self.scale > 1 else x


@pytest.mark.parametrize('preset,h,w', [('deblur', 45, 70), ('sr_x4', 21, 30), ('sr_x2', 30, 44),
                                        ('sr_x1', 50, 70), ('inpaint', 40, 36)])
def test_one_tile_covering_the_image_is_bitwise_untiled(preset, h, w):
    net = tiny_net(preset)
    x = _input(preset, 2, h, w)
    with torch.no_grad():
        ref = net(x, generator=torch.Generator().manual_seed(0))
        whole = restore_tiled(net, x, noise=_noise(2), tile=512, tile_overlap=32)
        untiled = restore_tiled(net, x, noise=_noise(2))
    assert whole.shape == (2, 3, h * net.scale, w * net.scale)
    assert torch.equal(whole, ref)
    assert torch.equal(untiled, ref)


def test_tile_equal_to_padded_size_is_still_one_tile():
    net = tiny_net('deblur')
    x = _input('deblur', 1, 40, 45)  # padded to 40 x 48
    with torch.no_grad():
        ref = net(x, generator=torch.Generator().manual_seed(0))
        out = restore_tiled(net, x, noise=_noise(), tile=48, tile_overlap=8)
    assert torch.equal(out, ref)


@pytest.mark.parametrize('preset', ['deblur', 'sr_x4', 'inpaint'])
def test_several_tiles_are_close_to_untiled(preset):
    net = tiny_net(preset)
    h, w = (40, 56) if preset == 'sr_x4' else (72, 88)
    x = _input(preset, 1, h, w)
    totals = []
    with torch.no_grad():
        ref = restore_tiled(net, x, noise=_noise())
        out = restore_tiled(net, x, noise=_noise(), tile=32, tile_overlap=8, tile_batch=3,
                            progress=lambda done, total: totals.append(total))
    assert totals and totals[-1] >= 4
    assert out.shape == ref.shape == (1, 3, h * net.scale, w * net.scale)
    diff = (out - ref).abs()
    assert float(diff.mean()) < 0.01
    assert float(diff.max()) < 0.2


def test_every_tile_shares_the_one_global_prior():
    net = tiny_net('deblur')
    calls = []
    original_restore = net.restore
    original_prior = net.estimate_prior

    def spy_prior(lq, **kw):
        calls.append(tuple(lq.shape))
        return original_prior(lq, **kw)

    priors = []

    def spy_restore(x, prior):
        priors.append(prior.clone())
        return original_restore(x, prior)

    net.estimate_prior, net.restore = spy_prior, spy_restore
    x = _input('deblur', 2, 64, 64)
    with torch.no_grad():
        out = restore_tiled(net, x, noise=_noise(2), tile=32, tile_overlap=8, tile_batch=2)
        expected = original_prior(x, noise=_noise(2))
    assert calls == [(2, 3, 64, 64)]  # once, on the whole images
    assert len(priors) >= 4 and out.shape == (2, 3, 64, 64)
    stacked = torch.cat(priors)
    for row in stacked:
        assert any(torch.equal(row, e) for e in expected)


def test_sr_tiling_scales_coordinates_exactly():
    fake = FakeNet('sr', scale=4, multiple=8)
    x = torch.rand(2, 3, 37, 53)
    out = restore_tiled(fake, x, tile=16, tile_overlap=5, tile_batch=4)
    expected = F.interpolate(x, scale_factor=4, mode='nearest')
    assert out.shape == (2, 3, 148, 212)
    assert len(fake.restore_calls) > 4
    torch.testing.assert_close(out, expected, atol=1e-6, rtol=0)
    # the prior given to each tile is the one of its own image
    for shape, prior in fake.restore_calls:
        assert prior.shape == (shape[0], 256)


def test_blend_weights_reconstruct_an_identity_network():
    fake = FakeNet('deblur', scale=1, multiple=8)
    x = torch.rand(1, 3, 61, 90)
    out = restore_tiled(fake, x, tile=24, tile_overlap=10)
    torch.testing.assert_close(out, x, atol=1e-6, rtol=0)


def test_tile_batch_does_not_change_the_result():
    net = tiny_net('sr_x2')
    x = _input('sr_x2', 2, 48, 64)
    with torch.no_grad():
        a = restore_tiled(net, x, noise=_noise(2), tile=32, tile_overlap=8, tile_batch=1)
        b = restore_tiled(net, x, noise=_noise(2), tile=32, tile_overlap=8, tile_batch=5)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


@pytest.mark.parametrize('length,tile,overlap,multiple', [(64, 32, 8, 8), (200, 48, 16, 8),
                                                          (96, 96, 8, 8), (48, 96, 8, 8),
                                                          (160, 64, 20, 32)])
def test_tile_starts_cover_align_and_overlap(length, tile, overlap, multiple):
    starts = tile_starts(length, tile, overlap, multiple)
    size = min(tile, length)
    assert starts[0] == 0 and starts[-1] + size == length
    assert all(s % multiple == 0 for s in starts)
    for a, b in zip(starts, starts[1:]):
        assert a < b and a + size - b >= overlap
    assert len(tile_windows(length, length, tile, overlap, multiple)) == len(starts) ** 2


def test_invalid_tile_arguments():
    net = tiny_net('deblur')
    x = torch.rand(1, 3, 32, 32)
    with pytest.raises(ValueError, match='tile_overlap'):
        restore_tiled(net, x, tile=16, tile_overlap=16)
    with pytest.raises(ValueError, match='tile_batch'):
        restore_tiled(net, x, tile=16, tile_overlap=4, tile_batch=0)


def test_prior_input_rule_deblur():
    net = tiny_net('deblur')  # CPEN grid = input / 4, input multiple 8
    small = torch.rand(1, 3, 64, 96)
    assert prior_input(net, small, 1024) is small
    big = torch.rand(1, 3, 1200, 200)  # grid longest side 300 > 100
    out = prior_input(net, big, 100)
    assert out.shape[-2] % 8 == 0 and out.shape[-1] % 8 == 0
    assert out.shape[-2] == 400 and out.shape[-1] == 64  # 1200*(100/300), 200/3 -> 64
    assert prior_input(net, big, None) is big and prior_input(net, big, 0) is big


def test_prior_input_rule_uses_the_lr_geometry_for_sr():
    x4, x1 = tiny_net('sr_x4'), tiny_net('sr_x1')
    lr = torch.rand(1, 3, 160, 120)
    assert prior_input(x4, lr, 160) is lr  # x4: CPEN sees the LR image itself
    out = prior_input(x4, lr, 80)
    assert tuple(out.shape[-2:]) == (80, 64)  # 120/2 = 60 -> nearest multiple of 8 = 64
    assert prior_input(x1, lr, 40) is lr  # x1: CPEN grid = LR / 4 = 40
    out = prior_input(x1, lr, 20)
    assert out.shape[-2] % 32 == 0 and out.shape[-1] % 32 == 0  # x1 input multiple


def test_prior_input_inpainting_mask_is_nearest_and_holes_stay_zero():
    net = tiny_net('inpaint')
    x = _input('inpaint', 1, 480, 320)
    out = prior_input(net, x, 30)
    mask = out[:, 3:]
    assert set(mask.unique().tolist()) <= {0.0, 1.0}
    assert float((out[:, :3] * mask).abs().max()) == 0.0
    assert 0.0 < float(mask.mean()) < 1.0


def test_prior_is_estimated_on_the_downscaled_image_over_budget():
    net = tiny_net('deblur')
    seen = []
    original = net.estimate_prior

    def spy(lq, **kw):
        seen.append(tuple(lq.shape[-2:]))
        return original(lq, **kw)

    net.estimate_prior = spy
    x = torch.rand(1, 3, 96, 160)  # CPEN grid 24 x 40
    with torch.no_grad():
        estimate_global_prior(net, x, noise=_noise(), max_side=20)
        out = restore_tiled(net, x, noise=_noise(), tile=64, tile_overlap=16, prior_max_side=20)
    assert seen == [(48, 80), (48, 80)]
    assert out.shape == (1, 3, 96, 160)


def test_the_default_prior_budget_applies_to_tiled_runs_only():
    """Untiled (or one window): the prior sees the whole image, as in the official inference."""
    fake = FakeNet('sr', scale=4, multiple=8)  # CPEN grid = the LR image
    x = torch.rand(1, 3, 1104, 16)  # longest side over the 1024 budget
    restore_tiled(fake, x)
    restore_tiled(fake, x, tile=2048)
    restore_tiled(fake, x, tile=512, tile_overlap=16)
    restore_tiled(fake, x, tile=512, tile_overlap=16, prior_max_side=0)
    restore_tiled(fake, x, prior_max_side=552)
    assert fake.prior_calls == [(1, 3, 1104, 16), (1, 3, 1104, 16), (1, 3, 1024, 16),
                                (1, 3, 1104, 16), (1, 3, 552, 8)]
