"""The DIRformer (``diffir_mm.archs.dirformer``): blocks against the formulas, heads, topology."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from diffir_mm.archs import (IPR_DIM, DIRformer, DynamicAttention, DynamicFeedForward,
                             DynamicTransformerBlock)

TINY = dict(dim=8, num_blocks=[1, 1, 1, 2], num_refinement_blocks=1, heads=[1, 2, 4, 8],
            ffn_expansion_factor=2.0, bias=False, LayerNorm_type='WithBias')


def _randomise(module: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Non-trivial weights everywhere (temperatures and norms included)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            offset = 1.0 if name.endswith(('temperature', 'norm1.body.weight',
                                           'norm2.body.weight')) else 0.0
            p.copy_(torch.randn(p.shape, generator=g) * 0.3 + offset)
    return module


def test_attention_matches_section_1_3():
    """DMTA: ``x*g + b`` -> qkv -> dwconv -> L2-normalised channel attention -> project_out."""
    torch.manual_seed(0)
    c, heads, b, h, w = 8, 2, 2, 5, 6
    attn = _randomise(DynamicAttention(c, heads, bias=False))
    x, z = torch.randn(b, c, h, w), torch.randn(b, IPR_DIM)
    gamma, beta = (z @ attn.kernel[0].weight.t()).chunk(2, dim=1)
    y = x * gamma[..., None, None] + beta[..., None, None]
    qkv = F.conv2d(F.conv2d(y, attn.qkv.weight), attn.qkv_dwconv.weight, padding=1, groups=3 * c)
    q, k, v = (t.reshape(b, heads, c // heads, h * w) for t in qkv.chunk(3, dim=1))
    q = q / q.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    k = k / k.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    a = torch.softmax(torch.einsum('bnih,bnjh->bnij', q, k) * attn.temperature, dim=-1)
    out = F.conv2d(torch.einsum('bnij,bnjh->bnih', a, v).reshape(b, c, h, w),
                   attn.project_out.weight)
    torch.testing.assert_close(attn(x, z), out, rtol=1e-5, atol=1e-5)
    assert attn.temperature.shape == (heads, 1, 1)
    assert attn.kernel[0].weight.shape == (2 * c, IPR_DIM) and attn.kernel[0].bias is None


def test_feed_forward_matches_section_1_4():
    """DGFN: ``x*g + b`` -> project_in -> dwconv -> GELU(x1) * x2 -> project_out."""
    torch.manual_seed(0)
    c = 8
    ffn = _randomise(DynamicFeedForward(c, 2.2, bias=False))
    hidden = int(c * 2.2)
    x, z = torch.randn(2, c, 4, 7), torch.randn(2, IPR_DIM)
    gamma, beta = (z @ ffn.kernel[0].weight.t()).chunk(2, dim=1)
    y = x * gamma[..., None, None] + beta[..., None, None]
    y = F.conv2d(F.conv2d(y, ffn.project_in.weight), ffn.dwconv.weight, padding=1,
                 groups=2 * hidden)
    out = F.conv2d(F.gelu(y[:, :hidden]) * y[:, hidden:], ffn.project_out.weight)
    torch.testing.assert_close(ffn(x, z), out, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('dim,factor,widths', [
    (48, 2.0, [96, 192, 384, 768]),      # deblur
    (64, 2.2, [140, 281, 563, 1126]),    # SR (int() floors)
    (52, 1.8, [93, 187, 374, 748]),      # inpainting
])
def test_ffn_hidden_widths(dim: int, factor: float, widths):
    for level, width in enumerate(widths):
        ffn = DynamicFeedForward(dim * 2 ** level, factor, bias=False)
        assert ffn.project_out.in_channels == width
        assert ffn.project_in.out_channels == ffn.dwconv.groups == 2 * width


def test_block_is_pre_norm_residual():
    torch.manual_seed(0)
    block = _randomise(DynamicTransformerBlock(8, 2, 2.0, False, 'BiasFree'))
    x, z = torch.randn(1, 8, 4, 4), torch.randn(1, IPR_DIM)
    y = x + block.attn(block.norm1(x), z)
    torch.testing.assert_close(block(x, z), y + block.ffn(block.norm2(y), z))
    names = {n for n, _ in block.named_parameters()}
    assert {'attn.kernel.0.weight', 'ffn.kernel.0.weight', 'norm1.body.weight',
            'norm2.body.weight'} <= names


@pytest.mark.parametrize('task,scale,in_ch,embed_in,multiple', [
    ('deblur', 1, 3, 3, 8),
    ('sr', 4, 3, 3, 8),
    ('sr', 2, 3, 12, 16),   # PixelUnshuffle(2)(LQ)
    ('sr', 1, 3, 48, 32),   # PixelUnshuffle(4)(LQ)
    ('inpaint', 1, 4, 4, 8),
])
def test_heads_and_input_arrangement(task: str, scale: int, in_ch: int, embed_in: int,
                                     multiple: int):
    """With the last conv zeroed, only the task's global residual is left (section 1.7)."""
    kw = dict(TINY, num_refinement_blocks=0 if task == 'inpaint' else 1)
    net = DIRformer(task, scale, in_ch, 3, **kw).eval()
    assert net.patch_embed.proj.in_channels == embed_in
    assert net.input_multiple == multiple
    last = net.tail[-1] if task == 'sr' else net.output
    with torch.no_grad():
        last.weight.zero_()
        if last.bias is not None:
            last.bias.zero_()
    x = torch.rand(2, in_ch, 32, 64)
    with torch.no_grad():
        out = net(x, torch.randn(2, IPR_DIM))
    s = scale if task == 'sr' else 1
    assert out.shape == (2, 3, 32 * s, 64 * s)
    if task == 'inpaint':
        expected = torch.zeros_like(out)  # no residual
    elif task == 'sr' and scale > 1:
        expected = x.repeat_interleave(scale, -1).repeat_interleave(scale, -2)  # nearest
    else:
        expected = x
    torch.testing.assert_close(out, expected, rtol=0, atol=0)


def test_sr_tail_is_two_pixel_shuffles_then_conv():
    net = DIRformer('sr', 4, 3, 3, **dict(TINY, LayerNorm_type='BiasFree'))
    c2 = 2 * TINY['dim']
    convs = [m for m in net.tail.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(m.in_channels, m.out_channels, m.bias is not None) for m in convs] == [
        (c2, 4 * c2, True), (c2, 4 * c2, True), (c2, 3, True)]
    assert sum(isinstance(m, torch.nn.PixelShuffle) for m in net.tail.modules()) == 2


def test_topology_widths():
    net = DIRformer('deblur', 1, 3, 3, **TINY)
    c = TINY['dim']
    widths = {name: stage[0].norm1.body.weight.numel()
              for name, stage in net.named_children()
              if isinstance(stage, torch.nn.ModuleList) and len(stage)}
    assert widths == {'encoder_level1': c, 'encoder_level2': 2 * c, 'encoder_level3': 4 * c,
                      'latent': 8 * c, 'decoder_level3': 4 * c, 'decoder_level2': 2 * c,
                      'decoder_level1': 2 * c, 'refinement': 2 * c}
    heads = {name: stage[0].attn.num_heads for name, stage in net.named_children()
             if isinstance(stage, torch.nn.ModuleList) and len(stage)}
    assert heads == {'encoder_level1': 1, 'encoder_level2': 2, 'encoder_level3': 4, 'latent': 8,
                     'decoder_level3': 4, 'decoder_level2': 2, 'decoder_level1': 1,
                     'refinement': 1}
    assert (net.reduce_chan_level3.in_channels, net.reduce_chan_level3.out_channels) == (8 * c,
                                                                                         4 * c)
    assert (net.reduce_chan_level2.in_channels, net.reduce_chan_level2.out_channels) == (4 * c,
                                                                                         2 * c)
    assert not hasattr(net, 'reduce_chan_level1')
    assert [len(getattr(net, n)) for n in ('decoder_level3', 'decoder_level2',
                                           'decoder_level1')] == [1, 1, 1]


def test_prior_modulates_the_output():
    torch.manual_seed(0)
    net = DIRformer('deblur', 1, 3, 3, **TINY).eval()
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        a, b = net(x, torch.randn(1, IPR_DIM)), net(x, torch.randn(1, IPR_DIM))
    assert (a - b).abs().max() > 1e-4


def test_invalid_configurations():
    with pytest.raises(ValueError, match='task'):
        DIRformer('denoise', 1, 3, 3, **TINY)
    with pytest.raises(ValueError, match='scale'):
        DIRformer('sr', 3, 3, 3, **TINY)
    with pytest.raises(ValueError, match='refinement'):
        DIRformer('inpaint', 1, 4, 3, **TINY)
    with pytest.raises(ValueError, match='LayerNorm_type'):
        DIRformer('deblur', 1, 3, 3, **dict(TINY, LayerNorm_type='RMS'))
