"""The fast (fused, channels-last) path and block checkpointing of the DIRformer (issue 14).

Every transformer block runs the fused operators of ``diffir_mm.archs.fused`` by default: its
training forward while autograd records, its inference forward (which adds folds that only hold
without gradients) otherwise; ``reference_path`` runs the official operator sequence. All must
compute the same image (1e-5 relative in float32, per sample for batches with different IPRs)
and the same gradients (float64: 1e-10 relative, i.e. the same function up to rounding; float32:
1e-4, the reference's own float32 rounding reaches 3e-5); block checkpointing must leave the
gradients unchanged (1e-6 relative).
"""
from __future__ import annotations

from typing import Dict, Iterator

import pytest
import torch

from diffir_mm.archs import (DIRformer, DiffIRS2Net, DynamicAttention, DynamicTransformerBlock,
                             build_diffir, reference_path)
from diffir_mm.archs.fused import (GatedGelu, attention_residual, folded_pointwise, gated_gelu,
                                   modulated_pointwise, pixel_gram, to_map, to_tokens)

#: Tiny random DIRformers of every head (task, scale, LayerNorm type, input channels).
VARIANTS = [
    ('deblur', 1, 'WithBias', 3),
    ('sr', 4, 'BiasFree', 3),
    ('sr', 2, 'BiasFree', 3),
    ('sr', 1, 'WithBias', 3),
    ('inpaint', 1, 'WithBias', 4),
]
TINY = dict(dim=8, num_blocks=(1, 2, 1, 1), heads=(1, 2, 2, 4), ffn_expansion_factor=1.5)


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.double() - b.double()).abs().max() / b.double().abs().max()).item()


def _tiny(task: str, scale: int, norm: str, channels: int, **kwargs) -> DIRformer:
    torch.manual_seed(0)
    net = DIRformer(task, scale, inp_channels=channels, LayerNorm_type=norm,
                    num_refinement_blocks=0 if task == 'inpaint' else 1, bias=task == 'sr',
                    **TINY, **kwargs)
    with torch.no_grad():  # move norm affines and biases off their identity initialisation
        for p in net.parameters():
            p.add_(0.2 * torch.randn_like(p))
    return net


def _inputs(net: DIRformer, batch: int, side: int = 16):
    torch.manual_seed(1)
    channels = net.patch_embed.proj.in_channels // net.unshuffle ** 2
    side *= net.unshuffle
    return torch.rand(batch, channels, side, side), torch.randn(batch, 256)


@pytest.fixture
def block_calls(monkeypatch) -> Iterator[Dict[str, int]]:
    """Counts the calls of each block forward (``inference``, ``train``, ``reference``)."""
    calls = {'inference': 0, 'train': 0, 'reference': 0}
    for name in calls:
        method = getattr(DynamicTransformerBlock, f'forward_{name}')

        def spy(self, x, prior, _method=method, _name=name):
            calls[_name] += 1
            return _method(self, x, prior)

        monkeypatch.setattr(DynamicTransformerBlock, f'forward_{name}', spy)
    yield calls


@pytest.mark.parametrize('task,scale,norm,channels', VARIANTS)
def test_fast_path_matches_reference(task, scale, norm, channels, block_calls):
    net = _tiny(task, scale, norm, channels).eval()
    x, prior = _inputs(net, batch=3)  # three different IPRs: per-sample folded weights
    with torch.no_grad(), reference_path(net):
        reference = net(x, prior)
    blocks = block_calls['reference']
    assert blocks > 0 and block_calls['inference'] == 0
    with torch.no_grad():
        fast = net(x, prior)
    with torch.inference_mode():
        fast_inference = net(x, prior)
    assert block_calls['inference'] == 2 * blocks and block_calls['train'] == 0
    assert _rel(fast, reference) <= 1e-5
    assert torch.equal(fast, fast_inference)
    assert fast.is_contiguous()  # the channels-last interior does not leak out
    # each sample alone (a single image: the modulation folded into LN's affine) gives its row
    with torch.no_grad():
        single = net(x[1:2], prior[1:2])
        with reference_path(net):
            single_reference = net(x[1:2], prior[1:2])
    assert _rel(single, fast[1:2]) <= 1e-5
    assert _rel(single, single_reference) <= 1e-5


def test_fast_path_keeps_the_dtype():
    net = _tiny('deblur', 1, 'WithBias', 3).eval().to(torch.bfloat16)
    x, prior = _inputs(net, batch=2)
    x, prior = x.bfloat16(), prior.bfloat16()
    with torch.no_grad():
        out = net(x, prior)
        with reference_path(net):
            reference = net(x, prior)
    assert out.dtype == torch.bfloat16
    assert _rel(out, reference) <= 5e-2  # bf16: ~3 significant digits


def _grads(net: torch.nn.Module, x: torch.Tensor, prior: torch.Tensor) -> Dict[str, torch.Tensor]:
    net.zero_grad(set_to_none=True)
    prior = prior.clone().requires_grad_(True)
    out = net(x, prior)
    (out.square().mean() + out.mean()).backward()
    grads = {name: p.grad.clone() for name, p in net.named_parameters()}
    grads['<prior>'] = prior.grad.clone()
    return grads


@pytest.mark.parametrize('task,scale,norm,channels', VARIANTS)
def test_fast_path_gives_the_reference_gradients(task, scale, norm, channels, block_calls):
    net = _tiny(task, scale, norm, channels).train().double()
    x, prior = _inputs(net, batch=2)
    x, prior = x.double(), prior.double()
    with reference_path(net):
        expected = _grads(net, x, prior)
    assert block_calls['train'] == 0
    got = _grads(net, x, prior)
    assert block_calls['train'] == block_calls['reference'] > 0  # the training forward ran
    assert expected.keys() == got.keys()
    for name, grad in expected.items():
        assert _rel(got[name], grad) <= 1e-10, name
    net.float()
    x, prior = x.float(), prior.float()
    with reference_path(net):
        expected = _grads(net, x, prior)
    got = _grads(net, x, prior)
    for name, grad in expected.items():
        assert _rel(got[name], grad) <= 1e-4, name


@pytest.mark.parametrize('task,scale,norm,channels', [VARIANTS[0], VARIANTS[1], VARIANTS[4]])
@pytest.mark.parametrize('batch', [1, 2])
def test_training_never_takes_the_inference_path(task, scale, norm, channels, batch,
                                                 block_calls):
    net = _tiny(task, scale, norm, channels).train()
    x, prior = _inputs(net, batch=batch)
    net(x, prior.requires_grad_(True)).mean().backward()
    assert block_calls['train'] > 0 and block_calls['inference'] == 0
    with torch.no_grad():
        net.eval()(x, prior)
    assert block_calls['inference'] == block_calls['train']


def test_reference_path_is_restored():
    net = _tiny('deblur', 1, 'WithBias', 3)
    blocks = [m for m in net.modules() if isinstance(m, DynamicTransformerBlock)]
    with pytest.raises(RuntimeError), reference_path(net):
        assert not any(b.fast_path for b in blocks)
        raise RuntimeError
    assert blocks and all(b.fast_path for b in blocks)


def test_gated_gelu_backward_is_exact():
    torch.manual_seed(0)
    hidden = torch.randn(2, 6, 6, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradcheck(GatedGelu.apply, (hidden, -1))
    assert torch.autograd.gradcheck(GatedGelu.apply, (hidden, 1))
    x1, x2 = hidden.detach().chunk(2, dim=-1)
    torch.testing.assert_close(gated_gelu(hidden, -1), torch.nn.functional.gelu(x1) * x2,
                               rtol=1e-12, atol=0)


@pytest.mark.parametrize('heads,bias', [(1, False), (4, True)])
def test_attention_residual_matches_the_module(heads, bias):
    torch.manual_seed(0)
    attn = DynamicAttention(8, heads, bias).double()
    with torch.no_grad():
        attn.temperature.uniform_(0.5, 2.0)
    qkv_map = torch.randn(2, 24, 5, 7, dtype=torch.double)
    qkv_map[1, 3] = 0  # an all-zero q row: F.normalize's eps floor
    residual = torch.randn(2, 8, 5, 7, dtype=torch.double)
    # attend() applies qkv_dwconv first; attention_residual takes its output
    with torch.no_grad():
        expected = residual + attn.attend(qkv_map)
        dw = to_tokens(attn.qkv_dwconv(qkv_map))  # (B, HW, 3C)
        got = attention_residual(to_tokens(residual), dw, heads, attn.temperature,
                                 attn.project_out.weight, attn.project_out.bias)
    torch.testing.assert_close(to_map(got, 5, 7), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize('hw,heads,chunk', [(1000, 1, 100), (1000, 2, 64), (777, 4, 128)])
def test_chunked_pixel_gram_equals_the_single_product(hw, heads, chunk):
    """CUDA sums the skinny q^T k over pixel chunks (cuBLAS ran the single product on a handful
    of thread blocks); chunks, a remainder and strided q / k views give the same matrix."""
    torch.manual_seed(0)
    c = 8 * heads
    qkv = torch.randn(2, hw, 3 * c, dtype=torch.double)
    q, k, _ = qkv.split(c, dim=-1)  # strided views, as attention_residual passes them
    expected = torch.einsum('bphi,bphj->bhij', q.reshape(2, hw, heads, 8),
                            k.reshape(2, hw, heads, 8))
    torch.testing.assert_close(pixel_gram(q, k, heads), expected, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(pixel_gram(q, k, heads, chunk=chunk), expected, rtol=1e-12,
                               atol=1e-12)


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
def test_attention_scores_stay_float32_under_autocast(dtype):
    """The Restorer's fp16 / bf16 run autocast: the un-normalised q k^T summed over 76800
    positive pixels (~77000 > 65504, the fp16 maximum) must not be computed in half precision
    (it overflowed to NaN under fp16 autocast before the scores were taken out of it)."""
    torch.manual_seed(0)
    c, hw = 8, 240 * 320
    qkv = torch.rand(1, hw, 3 * c) * 2
    residual = torch.randn(1, hw, c)
    weight = torch.randn(c, c, 1, 1) * 0.1
    ref = attention_residual(residual, qkv, 1, torch.ones(1, 1, 1), weight, None)
    with torch.autocast('cpu', dtype=dtype):
        out = attention_residual(residual, qkv, 1, torch.ones(1, 1, 1), weight, None)
    assert torch.isfinite(out).all()
    assert float((out.float() - ref).norm() / ref.norm()) < 1e-2


@pytest.mark.parametrize('task,scale,norm,channels', [VARIANTS[0], VARIANTS[1], VARIANTS[4]])
def test_block_checkpointing_gives_the_same_gradients(task, scale, norm, channels, block_calls):
    plain = _tiny(task, scale, norm, channels).train()
    checkpointed = _tiny(task, scale, norm, channels, with_cp=True).train()
    checkpointed.load_state_dict(plain.state_dict())
    x, prior = _inputs(plain, batch=2)
    expected = _grads(plain, x, prior)
    calls_plain = block_calls['train']
    got = _grads(checkpointed, x, prior)
    assert block_calls['train'] > 2 * calls_plain  # every block ran again in backward
    assert block_calls['inference'] == 0
    assert expected.keys() == got.keys()
    for name, grad in expected.items():
        assert _rel(got[name], grad) <= 1e-6, name


def test_with_cp_reaches_the_blocks_from_the_presets():
    with torch.device('meta'):
        net = build_diffir('deblur', 2, with_cp=True)
        assert isinstance(net, DiffIRS2Net)
    stages = [m for m in net.dirformer.modules() if hasattr(m, 'with_cp')]
    assert stages and all(m.with_cp for m in stages)
    with torch.device('meta'):
        assert not any(m.with_cp for m in build_diffir('sr_x4', 1).modules()
                       if hasattr(m, 'with_cp'))


def test_restorer_takes_the_fast_path(block_calls):
    from diffir_mm.inference.restorer import Restorer

    torch.manual_seed(0)
    net = DiffIRS2Net('deblur', 1, n_encoder_res=1, **TINY, num_refinement_blocks=1)
    restorer = Restorer(net, device='cpu')
    out = restorer.restore_tensor(torch.rand(1, 3, 16, 16))
    assert out.shape == (1, 3, 16, 16)
    assert block_calls['inference'] > 0
    assert block_calls['train'] == block_calls['reference'] == 0


@pytest.mark.parametrize('centred', [True, False])
@pytest.mark.parametrize('conv_bias', [False, True])
def test_single_image_pointwise_equals_the_folded_one(centred, conv_bias):
    torch.manual_seed(0)
    tokens = 3 + 2 * torch.randn(1, 40, 12)  # an offset mean: BiasFree's mean / sigma term
    weight, bias = torch.randn(12), (torch.randn(12) if centred else None)
    scale, shift = torch.randn(1, 12), torch.randn(1, 12)
    conv_w = torch.randn(30, 12, 1, 1)
    conv_b = torch.randn(30) if conv_bias else None
    args = (weight, bias, centred, 1e-5, scale, shift, conv_w, conv_b)
    got = modulated_pointwise(tokens, *args)
    expected = folded_pointwise(tokens.double(), *(a.double() if torch.is_tensor(a) else a
                                                   for a in args))
    assert got.shape == (1, 40, 30) and got.dtype == torch.float32
    assert _rel(got, expected) <= 1e-5
    # batches take the folded per-sample GEMM
    batch = modulated_pointwise(tokens.expand(2, -1, -1), weight, bias, centred, 1e-5,
                                scale.expand(2, -1), shift.expand(2, -1), conv_w, conv_b)
    assert _rel(batch[1:], expected) <= 1e-5
