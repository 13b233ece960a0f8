"""Stage-1 / stage-2 wrappers (``diffir_mm.archs.diffir_net``) and the CPEN input arrangement."""
from __future__ import annotations

from typing import Dict

import pytest
import torch
import torch.nn.functional as F

from diffir_mm.archs import CPEN, IPR_DIM, build_diffir, pad_to_multiple

TINY = dict(dim=8, num_blocks=[1, 1, 1, 1], num_refinement_blocks=1, n_encoder_res=1)
PU = F.pixel_unshuffle

#: preset -> (S1 CPEN in-channels, S2 CPEN in-channels, LQ arrangement) (section 1.8)
ARRANGEMENT: Dict[str, tuple] = {
    'deblur': (96, 48, lambda lq: PU(lq, 4)),
    'sr_x4': (51, 3, lambda lq: lq),
    'sr_x2': (60, 12, lambda lq: PU(lq, 2)),
    'sr_x1': (96, 48, lambda lq: PU(lq, 4)),
    'inpaint': (112, 64, lambda lq: PU(lq, 4)),
    'inpaint_big': (112, 64, lambda lq: PU(lq, 4)),
}


def _tiny(preset: str, stage: int) -> torch.nn.Module:
    torch.manual_seed(0)
    kw = dict(TINY, num_refinement_blocks=0) if preset.startswith('inpaint') else TINY
    return build_diffir(preset, stage, **kw).eval()


def _inputs(preset: str, h: int = 32, w: int = 32):
    scale = int(preset[-1]) if preset.startswith('sr') else 1
    channels = 4 if preset.startswith('inpaint') else 3
    g = torch.Generator().manual_seed(0)
    return (torch.rand(2, channels, h, w, generator=g),
            torch.rand(2, 3, h * scale, w * scale, generator=g), scale)


@pytest.mark.parametrize('preset', sorted(ARRANGEMENT))
def test_cpen_input_arrangement(preset: str):
    s1_in, s2_in, arrange = ARRANGEMENT[preset]
    s1, s2 = _tiny(preset, 1), _tiny(preset, 2)
    assert s1.cpen.E[0].in_channels == s1_in
    assert s2.cpen.E[0].in_channels == s2_in
    lq, gt, _ = _inputs(preset)
    with torch.no_grad():
        torch.testing.assert_close(s1.extract_prior(lq, gt),
                                   s1.cpen(torch.cat([arrange(lq), PU(gt, 4)], dim=1)))
        torch.testing.assert_close(s2.condition(lq), s2.cpen(arrange(lq)))


@pytest.mark.parametrize('preset', sorted(ARRANGEMENT))
def test_wrappers(preset: str):
    """S1: ``G(x, CPEN_S1(x, gt))``; S2: ``G(x, diffusion(CPEN_S2(x)))``; output sizes."""
    s1, s2 = _tiny(preset, 1), _tiny(preset, 2)
    lq, gt, scale = _inputs(preset)
    noise = torch.randn(2, IPR_DIM)
    with torch.no_grad():
        z = s1.extract_prior(lq, gt)
        out1 = s1(lq, gt)
        torch.testing.assert_close(out1, s1.dirformer(lq, z))
        ipr = s2.estimate_prior(lq, noise=noise)
        out2 = s2(lq, noise=noise)
        torch.testing.assert_close(out2, s2.dirformer(lq, ipr))
    assert z.shape == ipr.shape == (2, IPR_DIM)
    assert out1.shape == out2.shape == (2, 3, 32 * scale, 32 * scale)


@pytest.mark.parametrize('preset,h,w', [
    ('deblur', 30, 37), ('sr_x4', 13, 17), ('sr_x2', 21, 9), ('sr_x1', 33, 50),
    ('inpaint', 5, 70),
])
def test_any_input_size_is_padded_and_cropped(preset: str, h: int, w: int):
    s1, s2 = _tiny(preset, 1), _tiny(preset, 2)
    lq, gt, scale = _inputs(preset, h, w)
    with torch.no_grad():
        out1 = s1(lq, gt)
        out2 = s2(lq, noise=torch.randn(2, IPR_DIM))
    assert out1.shape == out2.shape == (2, 3, h * scale, w * scale)


def test_input_multiple():
    assert _tiny('deblur', 2).input_multiple == 8
    assert _tiny('sr_x4', 2).input_multiple == 8
    assert _tiny('sr_x2', 2).input_multiple == 16
    assert _tiny('sr_x1', 2).input_multiple == 32


def test_pad_to_multiple():
    x = torch.arange(2 * 3 * 5 * 6, dtype=torch.float32).view(2, 3, 5, 6)
    padded, size = pad_to_multiple(x, 4)
    assert size == (5, 6) and padded.shape == (2, 3, 8, 8)
    assert torch.equal(padded[..., :5, :6], x)
    torch.testing.assert_close(padded[..., 5, :6], x[..., 3, :])  # reflection
    same, _ = pad_to_multiple(x, 1)
    assert same is x
    tiny, _ = pad_to_multiple(torch.rand(1, 1, 2, 2), 8)  # too small to reflect
    assert tiny.shape == (1, 1, 8, 8)


def test_cpen_structure():
    """Section 1.8: conv + LReLU, n ResBlocks, 3 convs to 256, average pool, 2-layer MLP."""
    cpen = CPEN(51, n_encoder_res=9)
    convs = [m for m in cpen.E.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 1 + 2 * 9 + 3
    assert [(c.in_channels, c.out_channels) for c in convs[-3:]] == [(64, 128), (128, 128),
                                                                      (128, 256)]
    assert isinstance(cpen.E[-1], torch.nn.AdaptiveAvgPool2d)
    linears = [m for m in cpen.mlp if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(256, 256), (256, 256)]
    # the IPR is the output of a LeakyReLU(0.1)
    assert isinstance(cpen.mlp[-1], torch.nn.LeakyReLU) and cpen.mlp[-1].negative_slope == 0.1
    x = torch.randn(2, 51, 9, 11)
    with torch.no_grad():
        pooled = cpen.E(x).flatten(1)
        expected = F.leaky_relu(linears[1](F.leaky_relu(linears[0](pooled), 0.1)), 0.1)
        torch.testing.assert_close(cpen(x), expected)
    assert expected.shape == (2, IPR_DIM)


def test_stage1_gradients_reach_cpen_and_dirformer():
    net = _tiny('inpaint', 1).train()
    lq, gt, _ = _inputs('inpaint')
    net(lq, gt).abs().mean().backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_stage2_training_step_backpropagates():
    """``forward_train``: the teacher chain's steps and the image under its last IPR."""
    net = _tiny('sr_x2', 2).train()
    lq, gt, _ = _inputs('sr_x2')
    z, eps = torch.rand(2, IPR_DIM), torch.randn(2, IPR_DIM)
    image, steps = net.forward_train(lq, z, noise=eps)
    with torch.no_grad():
        reference = net.reverse_steps(lq, noise=eps, teacher_prior=z)
    # with gradients on, restore() takes the same (reference, unfolded) operators as training
    assert torch.equal(image, net.restore(lq, reference[-1]))
    assert len(steps) == 4 and all(torch.equal(a, b) for a, b in zip(steps, reference))
    loss = (steps[-1] - z).abs().mean() + (image - gt).abs().mean()
    loss.backward()
    assert all(p.grad is not None for p in net.parameters())


def test_stage2_warmup_forward_skips_the_dirformer():
    net = _tiny('deblur', 2).train()
    lq, _, _ = _inputs('deblur')
    result = net.forward_train(lq, torch.rand(2, IPR_DIM), restore=False)
    assert result.image is None and len(result.ipr_steps) == 4
    result.ipr_steps[-1].abs().mean().backward()
    assert all(p.grad is None for p in net.dirformer.parameters())


def test_stage2_inference_forward_always_returns_an_image():
    net = _tiny('sr_x4', 2)
    lq, _, _ = _inputs('sr_x4', 16, 24)
    noise = torch.randn(2, IPR_DIM)
    with torch.no_grad():
        out = net(lq, noise=noise)
        assert torch.equal(out, net.restore(lq, net.estimate_prior(lq, noise=noise)))
    assert isinstance(out, torch.Tensor) and out.shape == (2, 3, 64, 96)
    with pytest.raises(TypeError):
        net(lq, teacher_prior=torch.rand(2, IPR_DIM))  # training goes through forward_train
