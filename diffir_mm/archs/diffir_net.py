"""Stage-1 and stage-2 DiffIR networks (DIRformer + CPEN [+ IPR diffusion]).

Both wrappers pad the input (reflect, right/bottom) to the multiple the network needs, run the
prior extraction and the DIRformer on the padded image, and crop the output back -- the same
padding the official SR test applies, done once for every task.
"""
from __future__ import annotations

from typing import List, NamedTuple, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from .cpen import CPEN
from .dirformer import DIRformer
from .ipr_diffusion import IPRDenoiser, IPRDiffusion

__all__ = ['DiffIRS1Net', 'DiffIRS2Net', 'S2TrainOutput', 'pad_to_multiple']


class S2TrainOutput(NamedTuple):
    """Result of :meth:`DiffIRS2Net.forward_train`."""

    #: The restored image, or None when the DIRformer was not run (encoder warm-up).
    image: Optional[torch.Tensor]
    #: The ``T`` reverse-step outputs of the chain from the noised teacher IPR (last = IPR).
    ipr_steps: List[torch.Tensor]


def pad_to_multiple(x: torch.Tensor, multiple: int) -> Tuple[torch.Tensor, Tuple[int, int]]:
    """Pad H and W on the right/bottom to multiples of ``multiple``.

    Uses reflection where the image is large enough and edge replication otherwise.

    Returns:
        The padded tensor and the original ``(H, W)``.
    """
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        mode = 'reflect' if ph < h and pw < w else 'replicate'
        x = F.pad(x, (0, pw, 0, ph), mode=mode)
    return x, (h, w)


class _DiffIRBase(nn.Module):
    """Shared construction: the DIRformer and the CPEN input arrangement of each task."""

    def __init__(self, task: str, scale: int, inp_channels: int, out_channels: int, dim: int,
                 num_blocks: Sequence[int], num_refinement_blocks: int, heads: Sequence[int],
                 ffn_expansion_factor: float, bias: bool, LayerNorm_type: str,
                 with_cp: bool = False) -> None:  # noqa
        super().__init__()
        self.task = task
        self.scale = scale if task == 'sr' else 1
        self.dirformer = DIRformer(task, self.scale, inp_channels, out_channels, dim, num_blocks,
                                   num_refinement_blocks, heads, ffn_expansion_factor, bias,
                                   LayerNorm_type, with_cp)
        # CPEN sees the degraded input pixel-unshuffled by 4 (SR: to the LR/4 grid of x1 inputs,
        # i.e. 1 for x4, 2 for x2, 4 for x1) and the ground truth unshuffled by 4.
        self.lq_unshuffle = 4 // self.scale if task == 'sr' else 4
        self.lq_prior_channels = inp_channels * self.lq_unshuffle ** 2
        self.gt_prior_channels = out_channels * 16

    @property
    def input_multiple(self) -> int:
        """H and W of the degraded input must be multiples of this (inputs are padded to it)."""
        return max(self.dirformer.input_multiple, self.lq_unshuffle)

    def _lq_for_prior(self, lq: torch.Tensor) -> torch.Tensor:
        return F.pixel_unshuffle(lq, self.lq_unshuffle) if self.lq_unshuffle > 1 else lq

    def restore(self, lq: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
        """Run the DIRformer on ``lq`` (padded as needed) under the IPR ``prior``."""
        padded, (h, w) = pad_to_multiple(lq, self.input_multiple)
        out = self.dirformer(padded, prior)
        return out[..., :h * self.scale, :w * self.scale]


class DiffIRS1Net(_DiffIRBase):
    """Stage 1: CPEN_S1 extracts the IPR from degraded + ground-truth images; DIRformer restores.

    Args:
        task: ``'deblur'``, ``'sr'`` or ``'inpaint'``.
        scale: SR factor (4, 2, 1).
        inp_channels: Channels of the network input (inpainting: 4 = masked image + mask).
        out_channels: Output (and ground-truth) channels.
        dim, num_blocks, num_refinement_blocks, heads, ffn_expansion_factor, bias,
        LayerNorm_type: DIRformer hyper-parameters (official names).
        n_encoder_res: Residual blocks of the CPEN.
        with_cp: Block checkpointing of the DIRformer (MMagic's name), see :class:`DIRformer`.
    """

    def __init__(self, task: str = 'sr', scale: int = 4, inp_channels: int = 3,
                 out_channels: int = 3, dim: int = 48, num_blocks: Sequence[int] = (4, 6, 6, 8),
                 num_refinement_blocks: int = 4, heads: Sequence[int] = (1, 2, 4, 8),
                 ffn_expansion_factor: float = 2.66, bias: bool = False,
                 LayerNorm_type: str = 'WithBias', n_encoder_res: int = 6,
                 with_cp: bool = False) -> None:  # noqa
        super().__init__(task, scale, inp_channels, out_channels, dim, num_blocks,
                         num_refinement_blocks, heads, ffn_expansion_factor, bias, LayerNorm_type,
                         with_cp)
        self.cpen = CPEN(self.lq_prior_channels + self.gt_prior_channels, n_encoder_res)

    def extract_prior(self, lq: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
        """IPR ``z = CPEN_S1(arrange(lq), unshuffle4(gt))``, shape (B, 256)."""
        lq, _ = pad_to_multiple(lq, self.input_multiple)
        gt, _ = pad_to_multiple(gt, self.input_multiple * self.scale)
        return self.cpen(torch.cat([self._lq_for_prior(lq), F.pixel_unshuffle(gt, 4)], dim=1))

    def forward(self, lq: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
        """Restore ``lq`` with the prior extracted from ``(lq, gt)``."""
        return self.restore(lq, self.extract_prior(lq, gt))


class DiffIRS2Net(_DiffIRBase):
    """Stage 2: CPEN_S2 (degraded image only) + a 4-step diffusion estimate the IPR.

    Args:
        task, scale, inp_channels, out_channels, dim, num_blocks, num_refinement_blocks, heads,
        ffn_expansion_factor, bias, LayerNorm_type, n_encoder_res: as :class:`DiffIRS1Net`.
        n_denoise_res: Hidden layers of the MLP denoiser.
        timesteps: Diffusion steps ``T``.
        linear_start, linear_end: Beta range of the sqrt-linear schedule.
        with_cp: Block checkpointing of the DIRformer (MMagic's name), see :class:`DIRformer`.
    """

    def __init__(self, task: str = 'sr', scale: int = 4, inp_channels: int = 3,
                 out_channels: int = 3, dim: int = 48, num_blocks: Sequence[int] = (4, 6, 6, 8),
                 num_refinement_blocks: int = 4, heads: Sequence[int] = (1, 2, 4, 8),
                 ffn_expansion_factor: float = 2.66, bias: bool = False,
                 LayerNorm_type: str = 'WithBias', n_encoder_res: int = 6,  # noqa: N803
                 n_denoise_res: int = 1, timesteps: int = 4, linear_start: float = 0.1,
                 linear_end: float = 0.99, with_cp: bool = False) -> None:
        super().__init__(task, scale, inp_channels, out_channels, dim, num_blocks,
                         num_refinement_blocks, heads, ffn_expansion_factor, bias, LayerNorm_type,
                         with_cp)
        self.cpen = CPEN(self.lq_prior_channels, n_encoder_res)
        self.denoiser = IPRDenoiser(n_denoise_res, timesteps)
        self.diffusion = IPRDiffusion(timesteps, linear_start, linear_end)

    def condition(self, lq: torch.Tensor) -> torch.Tensor:
        """CPEN_S2 condition vector (B, 256) of the degraded image."""
        lq, _ = pad_to_multiple(lq, self.input_multiple)
        return self.cpen(self._lq_for_prior(lq))

    def estimate_prior(self, lq: torch.Tensor, noise: Optional[torch.Tensor] = None,
                       generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Estimate the IPR (B, 256) of ``lq`` by the reverse diffusion from ``x_T``.

        Args:
            lq: Degraded input (B, inp_channels, H, W).
            noise: Start vector ``x_T`` (B, 256); drawn from ``generator`` (or the global RNG)
                when omitted.
            generator: RNG for ``noise``; the same seed gives identical results.
        """
        return self.reverse_steps(lq, noise=noise, generator=generator)[-1]

    def reverse_steps(self, lq: torch.Tensor, noise: Optional[torch.Tensor] = None,
                      teacher_prior: Optional[torch.Tensor] = None,
                      generator: Optional[torch.Generator] = None) -> List[torch.Tensor]:
        """The ``T`` reverse-step outputs (the last one is the IPR).

        Args:
            lq: Degraded input.
            noise: ``x_T``; with ``teacher_prior``, the ``eps`` that noises it.
            teacher_prior: Stage-1 IPR; the chain then starts from ``q_sample(teacher_prior,
                T-1, eps)`` (the training chain).
            generator: RNG for ``noise`` when it is omitted.
        """
        return self.diffusion.sample(self.condition(lq), self.denoiser, noise=noise,
                                     teacher_prior=teacher_prior, generator=generator)

    def forward(self, lq: torch.Tensor, noise: Optional[torch.Tensor] = None,
                generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Inference: restore ``lq`` under the IPR estimated from ``x_T`` (``noise``).

        Use :meth:`restore` to restore under an explicit prior, :meth:`forward_train` to train.
        """
        return self.restore(lq, self.estimate_prior(lq, noise=noise, generator=generator))

    def forward_train(self, lq: torch.Tensor, teacher_prior: torch.Tensor,
                      noise: Optional[torch.Tensor] = None,
                      generator: Optional[torch.Generator] = None,
                      restore: bool = True) -> S2TrainOutput:
        """Training: the chain from the noised teacher IPR, and the image restored under it.

        Args:
            lq: Degraded input.
            teacher_prior: Stage-1 IPR ``z_S1`` (B, 256).
            noise: The ``eps`` of ``q_sample(teacher_prior, T-1, eps)``; drawn when omitted.
            generator: RNG for ``noise``.
            restore: Run the DIRformer (False in the encoder warm-up phase: ``image`` is None).
        """
        steps = self.reverse_steps(lq, noise=noise, teacher_prior=teacher_prior,
                                   generator=generator)
        return S2TrainOutput(self.restore(lq, steps[-1]) if restore else None, steps)
