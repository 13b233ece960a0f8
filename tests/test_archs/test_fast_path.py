"""The folded inference path and block checkpointing of the DIRformer (issue 14).

Under ``torch.no_grad()`` / ``torch.inference_mode()`` every transformer block folds its norm
affine and IPR modulation into the following 1x1 convolution; with autograd recording it runs the
reference operators. Both must compute the same image (1e-5 relative), per sample for batches
with different IPRs; block checkpointing must leave the gradients unchanged (1e-6 relative).
"""
from __future__ import annotations

from typing import Dict, Iterator, List

import pytest
import torch

from diffir_mm.archs import DIRformer, DiffIRS2Net, DynamicTransformerBlock, build_diffir

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
def folded_calls(monkeypatch) -> Iterator[List[int]]:
    """Counts the calls of the folded block forward (``[folded, total]``)."""
    calls = [0, 0]
    folded, forward = (DynamicTransformerBlock.forward_folded, DynamicTransformerBlock.forward)

    def spy_folded(self, x, prior):
        calls[0] += 1
        return folded(self, x, prior)

    def spy_forward(self, x, prior):
        calls[1] += 1
        return forward(self, x, prior)

    monkeypatch.setattr(DynamicTransformerBlock, 'forward_folded', spy_folded)
    monkeypatch.setattr(DynamicTransformerBlock, 'forward', spy_forward)
    yield calls


@pytest.mark.parametrize('task,scale,norm,channels', VARIANTS)
def test_folded_path_matches_reference(task, scale, norm, channels, folded_calls):
    net = _tiny(task, scale, norm, channels).eval()
    x, prior = _inputs(net, batch=3)  # three different IPRs: per-sample folded weights
    reference = net(x, prior)
    assert folded_calls == [0, folded_calls[1]] and folded_calls[1] > 0
    with torch.no_grad():
        folded = net(x, prior)
    with torch.inference_mode():
        folded_inference = net(x, prior)
    assert folded_calls[0] == 2 * folded_calls[1] / 3
    assert _rel(folded, reference) <= 1e-5
    assert torch.equal(folded, folded_inference)
    # each sample alone gives its row of the batch
    with torch.no_grad():
        single = net(x[1:2], prior[1:2])
    assert _rel(single, folded[1:2]) <= 1e-5


def test_folded_path_keeps_the_dtype():
    net = _tiny('deblur', 1, 'WithBias', 3).eval().to(torch.bfloat16)
    x, prior = _inputs(net, batch=2)
    x, prior = x.bfloat16(), prior.bfloat16()
    with torch.no_grad():
        out = net(x, prior)
    assert out.dtype == torch.bfloat16
    assert _rel(out, net(x, prior).detach()) <= 5e-2  # bf16: ~3 significant digits


def _grads(net: torch.nn.Module, x: torch.Tensor, prior: torch.Tensor) -> Dict[str, torch.Tensor]:
    net.zero_grad(set_to_none=True)
    prior = prior.clone().requires_grad_(True)
    out = net(x, prior)
    (out.square().mean() + out.mean()).backward()
    grads = {name: p.grad.clone() for name, p in net.named_parameters()}
    grads['<prior>'] = prior.grad.clone()
    return grads


@pytest.mark.parametrize('task,scale,norm,channels', [VARIANTS[0], VARIANTS[1], VARIANTS[4]])
def test_block_checkpointing_gives_the_same_gradients(task, scale, norm, channels,
                                                      folded_calls):
    plain = _tiny(task, scale, norm, channels).train()
    checkpointed = _tiny(task, scale, norm, channels, with_cp=True).train()
    checkpointed.load_state_dict(plain.state_dict())
    x, prior = _inputs(plain, batch=2)
    expected = _grads(plain, x, prior)
    calls_plain = folded_calls[1]
    got = _grads(checkpointed, x, prior)
    assert folded_calls[0] == 0  # training never folds, not even in the recomputation
    assert folded_calls[1] > 2 * calls_plain  # every block ran again in backward
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


def test_restorer_takes_the_folded_path(folded_calls):
    from diffir_mm.inference.restorer import Restorer

    torch.manual_seed(0)
    net = DiffIRS2Net('deblur', 1, n_encoder_res=1, **TINY, num_refinement_blocks=1)
    restorer = Restorer(net, device='cpu')
    out = restorer.restore_tensor(torch.rand(1, 3, 16, 16))
    assert out.shape == (1, 3, 16, 16)
    assert folded_calls[0] == folded_calls[1] > 0
