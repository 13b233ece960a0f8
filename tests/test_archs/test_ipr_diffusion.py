"""The 4-step IPR diffusion (``diffir_mm.archs.ipr_diffusion``): schedule, reverse, training."""
from __future__ import annotations

import pytest
import torch

from diffir_mm.archs import (IPR_DIM, IPRDenoiser, IPRDiffusion, build_diffir,
                             sqrt_linear_schedule)

#: docs/advanced_guides/method.md §3 (T=4, linear_start=0.1, linear_end=0.99), 4 decimals.
SCHEDULE_TABLE = {
    'betas': [0.1000, 0.2943, 0.5910, 0.9900],
    'alphas_cumprod': [0.9000, 0.6351, 0.2598, 0.0026],
    'sqrt_alphas_cumprod': [0.9487, 0.7970, 0.5097, 0.0510],
    'sqrt_one_minus_alphas_cumprod': [0.3162, 0.6040, 0.8603, 0.9987],
    'posterior_mean_coef1': [1.0, 0.7652, 0.6363, 0.5059],
    'posterior_mean_coef2': [0.0, 0.2302, 0.3153, 0.0742],
}
TINY = dict(dim=8, num_blocks=[1, 1, 1, 1], num_refinement_blocks=1, n_encoder_res=1)


@pytest.fixture(scope='module')
def tiny_s2() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_diffir('deblur', 2, **TINY).eval()


@pytest.fixture(scope='module')
def lq() -> torch.Tensor:
    return torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize('name', sorted(SCHEDULE_TABLE))
def test_schedule_table(name: str):
    diffusion = IPRDiffusion()  # defaults: T=4, 0.1 -> 0.99
    values = getattr(diffusion, name)
    assert values.dtype == torch.float32 and values.shape == (4,)
    expected = torch.tensor(SCHEDULE_TABLE[name], dtype=torch.float64)
    assert (values.double() - expected).abs().max().item() <= 5.01e-5, values.tolist()


def test_schedule_is_sqrt_linear_and_not_persistent():
    betas = sqrt_linear_schedule(4, 0.1, 0.99)
    assert betas.dtype == torch.float64
    torch.testing.assert_close(betas.sqrt()[[0, -1]], torch.tensor([0.1, 0.99]).double().sqrt())
    diffs = betas.sqrt().diff()
    torch.testing.assert_close(diffs, diffs[:1].expand(3))  # equally spaced square roots
    assert IPRDiffusion().state_dict() == {}  # the buffers are not saved by our checkpoints
    assert len(list(IPRDiffusion().parameters())) == 0


def test_denoiser_input_and_size():
    """``[c, t / (10 T), x_t]`` -> 256; two Linear layers, 197,376 parameters (section 1.9)."""
    denoiser = IPRDenoiser(n_denoise_res=1, timesteps=4)
    assert sum(p.numel() for p in denoiser.parameters()) == 197_376
    x, c = torch.randn(3, IPR_DIM), torch.randn(3, IPR_DIM)
    t = torch.tensor([0, 2, 3])
    manual = denoiser.resmlp(torch.cat([c, (t.float() / 40).view(-1, 1), x], dim=1))
    torch.testing.assert_close(denoiser(x, t, c), manual, rtol=0, atol=0)


def test_reverse_is_the_deterministic_posterior_mean(tiny_s2, lq):
    """Each step is ``coef1_t * x0_hat + coef2_t * x_t`` for t = 3..0; no noise is added."""
    coef1 = SCHEDULE_TABLE['posterior_mean_coef1']
    coef2 = SCHEDULE_TABLE['posterior_mean_coef2']
    x_t = torch.randn(2, IPR_DIM)
    with torch.no_grad():
        steps = tiny_s2.reverse_steps(lq, noise=x_t)
        c = tiny_s2.condition(lq)
        x, manual = x_t, []
        for t in (3, 2, 1, 0):
            x0 = tiny_s2.denoiser(x, torch.full((2,), t), c)
            x = coef1[t] * x0 + coef2[t] * x
            manual.append(x)
        final_x0 = tiny_s2.denoiser(steps[-2], torch.zeros(2, dtype=torch.long), c)
    assert len(steps) == 4
    for ours, ref in zip(steps, manual):
        torch.testing.assert_close(ours, ref, rtol=0, atol=2e-4)  # coefficients are 4-decimal
    torch.testing.assert_close(steps[-1], final_x0, rtol=0, atol=1e-6)  # coef1_0 = 1, coef2_0 = 0


def test_same_seed_same_output(tiny_s2, lq):
    with torch.no_grad():
        a = tiny_s2(lq, generator=torch.Generator().manual_seed(7))
        b = tiny_s2(lq, generator=torch.Generator().manual_seed(7))
        c = tiny_s2(lq, generator=torch.Generator().manual_seed(8))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_explicit_noise_is_x_T(tiny_s2, lq):
    x_T = torch.randn(2, IPR_DIM, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        drawn = tiny_s2.estimate_prior(lq, generator=torch.Generator().manual_seed(3))
        given = tiny_s2.estimate_prior(lq, noise=x_T)
        other = tiny_s2.estimate_prior(lq, noise=torch.randn(2, IPR_DIM))
        out = tiny_s2(lq, noise=x_T)
        out_prior = tiny_s2.restore(lq, given)
    assert torch.equal(drawn, given)
    assert not torch.equal(given, other)
    assert torch.equal(out, out_prior)


def test_global_rng_is_used_without_generator(tiny_s2, lq):
    with torch.no_grad():
        torch.manual_seed(11)
        a = tiny_s2.estimate_prior(lq)
        torch.manual_seed(11)
        b = tiny_s2.estimate_prior(lq)
    assert torch.equal(a, b)


def test_noise_shape_is_checked(tiny_s2, lq):
    with pytest.raises(ValueError, match='noise must have shape'):
        tiny_s2.estimate_prior(lq, noise=torch.randn(2, 64))


def test_training_chain_starts_from_the_noised_teacher(tiny_s2, lq):
    """x_T = sqrt(abar_3) z + sqrt(1 - abar_3) eps = 0.0510 z + 0.9987 eps (section 1.10)."""
    z, eps = torch.rand(2, IPR_DIM), torch.randn(2, IPR_DIM)
    with torch.no_grad():
        chain = tiny_s2.reverse_steps(lq, noise=eps, teacher_prior=z)
        x_T = tiny_s2.diffusion.q_sample(z, 3, eps)
        direct = tiny_s2.reverse_steps(lq, noise=x_T)
    torch.testing.assert_close(x_T, 0.0510 * z + 0.9987 * eps, rtol=0, atol=1e-4)
    for a, b in zip(chain, direct):
        assert torch.equal(a, b)


def test_gradients_flow_through_all_steps():
    """Only the last IPR is supervised; its gradient reaches every step, CPEN and the denoiser."""
    torch.manual_seed(0)
    net = build_diffir('deblur', 2, **TINY).train()
    lq = torch.rand(2, 3, 32, 32)
    teacher = torch.rand(2, IPR_DIM, requires_grad=True)
    steps = net.reverse_steps(lq, teacher_prior=teacher,
                              generator=torch.Generator().manual_seed(0))
    assert len(steps) == 4
    for step in steps:
        step.retain_grad()
    loss = (steps[-1] - teacher.detach()).abs().mean() + net.restore(lq, steps[-1]).abs().mean()
    loss.backward()
    for i, step in enumerate(steps[:-1]):
        assert step.grad is not None and step.grad.abs().sum() > 0, f'no gradient at step {i}'
    # the teacher enters only through x_T, so its gradient crossed all 4 reverse steps
    assert teacher.grad is not None and teacher.grad.abs().sum() > 0
    for part in ('cpen', 'denoiser', 'dirformer'):
        for name, p in getattr(net, part).named_parameters():
            assert p.grad is not None and p.grad.abs().sum() > 0, f'{part}.{name}'


def test_ipr_only_loss_reaches_cpen_and_denoiser_not_dirformer():
    """The IPR loss alone (the warm-up phase) trains CPEN_S2 and the denoiser only."""
    torch.manual_seed(0)
    net = build_diffir('sr_x4', 2, **TINY).train()
    lq = torch.rand(1, 3, 16, 16)
    teacher = torch.rand(1, IPR_DIM)
    steps = net.reverse_steps(lq, teacher_prior=teacher)
    (steps[-1] - teacher).abs().mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.cpen.parameters())
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.denoiser.parameters())
    assert all(p.grad is None for p in net.dirformer.parameters())
