"""The latent diffusion on the 256-d IPR: schedule, MLP denoiser and the 4-step reverse process.

DiffIR's diffusion is x0-parameterised and deterministic: every reverse step returns the
posterior mean ``coef1_t * x0_hat + coef2_t * x_t`` without adding noise, so the only randomness is
the start vector ``x_T``.
"""
from __future__ import annotations

from typing import List, Optional, Union

import torch
from torch import nn

from .dirformer import IPR_DIM

__all__ = ['IPRDenoiser', 'IPRDiffusion', 'sqrt_linear_schedule']


def sqrt_linear_schedule(timesteps: int, linear_start: float, linear_end: float) -> torch.Tensor:
    """Official 'linear' schedule: ``beta = linspace(sqrt(start), sqrt(end), T) ** 2`` (float64)."""
    return torch.linspace(linear_start ** 0.5, linear_end ** 0.5, timesteps,
                          dtype=torch.float64) ** 2


class _ResMLP(nn.Module):
    """Linear + LeakyReLU(0.1); the official 'residual' MLP has its skip commented out."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.resmlp = nn.Sequential(nn.Linear(channels, channels), nn.LeakyReLU(0.1, inplace=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.resmlp(x)


class IPRDenoiser(nn.Module):
    """MLP that predicts ``x0`` from ``[condition, t / (10 T), x_t]`` (513 -> 256).

    Args:
        n_denoise_res: Hidden 256 -> 256 layers after the input layer.
        timesteps: Number of diffusion steps ``T`` (the time input is ``t / (10 T)``).
    """

    def __init__(self, n_denoise_res: int = 1, timesteps: int = 4) -> None:
        super().__init__()
        self.max_period = timesteps * 10
        self.resmlp = nn.Sequential(
            nn.Linear(IPR_DIM * 2 + 1, IPR_DIM), nn.LeakyReLU(0.1, inplace=True),
            *[_ResMLP(IPR_DIM) for _ in range(n_denoise_res)])

    def forward(self, x: torch.Tensor, t: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        t = (t.to(x.dtype) / self.max_period).view(-1, 1)
        return self.resmlp(torch.cat([condition, t, x], dim=1))


class IPRDiffusion(nn.Module):
    """Schedule and reverse process of DiffIR's IPR diffusion (holds no parameters).

    The schedule tensors are non-persistent buffers computed in float64 and stored in float32,
    exactly like the official ``DDPM`` registers them.

    Args:
        timesteps: ``T`` (4 in every released model).
        linear_start: First beta (0.1).
        linear_end: Last beta (0.99).
    """

    def __init__(self, timesteps: int = 4, linear_start: float = 0.1,
                 linear_end: float = 0.99) -> None:
        super().__init__()
        self.timesteps = timesteps
        betas = sqrt_linear_schedule(timesteps, linear_start, linear_end)
        alphas_cumprod = torch.cumprod(1.0 - betas, dim=0)
        alphas_cumprod_prev = torch.cat([betas.new_ones(1), alphas_cumprod[:-1]])
        schedule = dict(
            betas=betas,
            alphas_cumprod=alphas_cumprod,
            alphas_cumprod_prev=alphas_cumprod_prev,
            sqrt_alphas_cumprod=alphas_cumprod.sqrt(),
            sqrt_one_minus_alphas_cumprod=(1.0 - alphas_cumprod).sqrt(),
            posterior_mean_coef1=betas * alphas_cumprod_prev.sqrt() / (1.0 - alphas_cumprod),
            posterior_mean_coef2=(1.0 - alphas_cumprod_prev) * (1.0 - betas).sqrt()
            / (1.0 - alphas_cumprod),
        )
        for name, value in schedule.items():
            self.register_buffer(name, value.float(), persistent=False)

    def q_sample(self, x0: torch.Tensor, t: int, noise: torch.Tensor) -> torch.Tensor:
        """Noise ``x0`` to step ``t``: ``sqrt(abar_t) x0 + sqrt(1 - abar_t) noise``."""
        return self.sqrt_alphas_cumprod[t] * x0 + self.sqrt_one_minus_alphas_cumprod[t] * noise

    def p_sample(self, x: torch.Tensor, t: int, condition: torch.Tensor,
                 denoiser: nn.Module) -> torch.Tensor:
        """One deterministic reverse step: the posterior mean given the denoiser's ``x0``."""
        t_batch = torch.full((x.shape[0],), t, device=x.device, dtype=torch.long)
        x0_hat = denoiser(x, t_batch, condition)
        return self.posterior_mean_coef1[t] * x0_hat + self.posterior_mean_coef2[t] * x

    def reverse(self, x_t: torch.Tensor, condition: torch.Tensor,
                denoiser: nn.Module) -> List[torch.Tensor]:
        """Run steps ``T-1 .. 0`` from ``x_t``; returns the vector after each step."""
        steps = []
        for t in reversed(range(self.timesteps)):
            x_t = self.p_sample(x_t, t, condition, denoiser)
            steps.append(x_t)
        return steps

    def sample(self, condition: torch.Tensor, denoiser: nn.Module,
               noise: Optional[torch.Tensor] = None,
               teacher_prior: Optional[torch.Tensor] = None,
               generator: Optional[torch.Generator] = None) -> List[torch.Tensor]:
        """Estimate the IPR; returns the list of the ``T`` intermediate vectors (last = IPR).

        Args:
            condition: CPEN_S2 output (B, 256).
            denoiser: The :class:`IPRDenoiser`.
            noise: Explicit Gaussian vector. Without ``teacher_prior`` it is the start ``x_T``;
                with it, it is the ``eps`` of ``q_sample(teacher_prior, T-1, eps)``.
            teacher_prior: Stage-1 IPR; selects the training chain that starts from the noised
                teacher IPR (gradients flow through all steps).
            generator: Used to draw ``noise`` when it is not given.
        """
        if noise is None:
            noise = torch.randn(condition.shape, generator=generator, dtype=condition.dtype,
                                device=condition.device if generator is None else generator.device)
            noise = noise.to(condition.device)
        elif noise.shape != condition.shape:
            raise ValueError(f'noise must have shape {tuple(condition.shape)}, '
                             f'got {tuple(noise.shape)}')
        noise = noise.to(dtype=condition.dtype, device=condition.device)
        x_t = noise if teacher_prior is None else self.q_sample(teacher_prior, self.timesteps - 1,
                                                                 noise)
        return self.reverse(x_t, condition, denoiser)


TensorOrSteps = Union[torch.Tensor, List[torch.Tensor]]
