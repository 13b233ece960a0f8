"""DIRformer: the Restormer-style restoration U-Net of DiffIR, modulated by the IPR.

Parameter names follow the official implementation so that released checkpoints map onto this
module tree one to one (see :mod:`diffir_mm.checkpoint.naming`).

Every block has one training forward, one inference forward and the reference operators, all
computing the same function:

* the training forward (autograd recording): the fused operators of :mod:`diffir_mm.archs.fused`
  on a channels-last residual stream viewed as (B, HW, C) tokens: one ``F.layer_norm`` per norm,
  whose affine and the IPR modulation fold into the following 1x1 convolution as a per-sample
  GEMM weight; tokens out of every GEMM, so the depth-wise convolutions read channels-last maps
  (their fast layout here); the attention map folded into ``project_out``; the residual adds
  inside the GEMMs. Its gradients equal the reference's (tested);
* the inference forward (no gradients: MMagic's val/test loops, the Restorer, hence the CLI and
  the inferencer): the same operators plus the folds that only hold without autograd (a single
  image's modulation becomes LN's own affine, the FFN residual is added in place);
* the reference path (:func:`reference_path`): LayerNorm, then the IPR modulation ``x * s + t``,
  then the 1x1 convolution, exactly the official operators (tests and MAC counting use it).

``with_cp=True`` recomputes every transformer block in the backward pass
(``torch.utils.checkpoint``) to cut training memory; gradients are unchanged.
"""
from __future__ import annotations

import contextlib
from typing import Iterator, Optional, Sequence

import torch
import torch.nn.functional as F
import torch.utils.checkpoint as torch_checkpoint
from torch import nn

from .fused import (attention_residual, folded_pointwise, gated_gelu, modulated_pointwise,
                    scratch_buffers, to_map, to_tokens)
from .norm import LayerNorm2d

__all__ = ['DIRformer', 'DynamicAttention', 'DynamicFeedForward', 'DynamicTransformerBlock',
           'IPR_DIM', 'TASKS', 'reference_path']

#: Width of the IR prior representation (4 * 64, hard-coded in the official code).
IPR_DIM = 256
#: Tasks with a dedicated head.
TASKS = ('deblur', 'sr', 'inpaint')


def _modulation(channels: int) -> nn.Sequential:
    """IPR -> per-channel (scale, shift) pair; a Sequential to keep the ``kernel.0`` key."""
    return nn.Sequential(nn.Linear(IPR_DIM, channels * 2, bias=False))


def _modulate(x: torch.Tensor, prior: torch.Tensor, kernel: nn.Module) -> torch.Tensor:
    scale, shift = kernel(prior)[:, :, None, None].chunk(2, dim=1)
    return x * scale + shift


def _pointwise(tokens: torch.Tensor, norm: LayerNorm2d, prior: torch.Tensor, kernel: nn.Module,
               conv: nn.Conv2d, scratch: Optional[str]) -> torch.Tensor:
    """``conv(modulate(norm(x)))`` on (B, HW, C) tokens (see :mod:`.fused`).

    ``scratch`` names the inference buffer to write into (:func:`.fused.modulated_pointwise`);
    ``None``: the autograd-safe :func:`.fused.folded_pointwise` of the training forward.
    """
    ln = norm.body
    scale, shift = kernel(prior).to(tokens.dtype).chunk(2, dim=1)  # (B, C) each
    args = (tokens, ln.weight, ln.bias, ln.with_bias, ln.eps, scale, shift, conv.weight, conv.bias)
    if scratch is None:
        return folded_pointwise(*args)
    return modulated_pointwise(*args, scratch=scratch)


class DynamicAttention(nn.Module):
    """Dynamic multi-head transposed attention (DMTA): channel attention modulated by the IPR.

    Args:
        dim: Channels.
        num_heads: Attention heads; the attention map of each head is (C/heads x C/heads).
        bias: Whether the convolutions have biases.
    """

    def __init__(self, dim: int, num_heads: int, bias: bool) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.temperature = nn.Parameter(torch.ones(num_heads, 1, 1))
        self.kernel = _modulation(dim)
        self.qkv = nn.Conv2d(dim, dim * 3, 1, bias=bias)
        self.qkv_dwconv = nn.Conv2d(dim * 3, dim * 3, 3, padding=1, groups=dim * 3, bias=bias)
        self.project_out = nn.Conv2d(dim, dim, 1, bias=bias)

    def forward(self, x: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
        """Attention of the normalised ``x`` (reference path: modulation, then ``qkv``)."""
        return self.attend(self.qkv(_modulate(x, prior, self.kernel)))

    def attend(self, qkv: torch.Tensor) -> torch.Tensor:
        """Everything after the ``qkv`` 1x1 convolution (reference path)."""
        b, c3, h, w = qkv.shape
        c = c3 // 3
        q, k, v = self.qkv_dwconv(qkv).reshape(b, 3, self.num_heads, c // self.num_heads,
                                               h * w).unbind(1)
        q = F.normalize(q, dim=-1)
        k = F.normalize(k, dim=-1)
        attn = torch.softmax((q @ k.transpose(-2, -1)) * self.temperature, dim=-1)
        return self.project_out((attn @ v).reshape(b, c, h, w))


class DynamicFeedForward(nn.Module):
    """Dynamic gated feed-forward network (DGFN): GELU-gated depth-wise FFN with IPR modulation.

    Args:
        dim: Channels.
        ffn_expansion_factor: Hidden width is ``int(dim * ffn_expansion_factor)``.
        bias: Whether the convolutions have biases.
    """

    def __init__(self, dim: int, ffn_expansion_factor: float, bias: bool) -> None:
        super().__init__()
        hidden = int(dim * ffn_expansion_factor)
        self.kernel = _modulation(dim)
        self.project_in = nn.Conv2d(dim, hidden * 2, 1, bias=bias)
        self.dwconv = nn.Conv2d(hidden * 2, hidden * 2, 3, padding=1, groups=hidden * 2, bias=bias)
        self.project_out = nn.Conv2d(hidden, dim, 1, bias=bias)

    def forward(self, x: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
        """FFN of the normalised ``x`` (reference path: modulation, then ``project_in``)."""
        return self.gate(self.project_in(_modulate(x, prior, self.kernel)))

    def gate(self, hidden: torch.Tensor) -> torch.Tensor:
        """Everything after the ``project_in`` 1x1 convolution (reference path)."""
        gate, value = self.dwconv(hidden).chunk(2, dim=1)
        return self.project_out(F.gelu(gate) * value)


class DynamicTransformerBlock(nn.Module):
    """Pre-norm block ``x + DMTA(LN(x), z)`` then ``x + DGFN(LN(x), z)``."""

    def __init__(self, dim: int, num_heads: int, ffn_expansion_factor: float, bias: bool,
                 LayerNorm_type: str) -> None:  # noqa: N803 (official name)
        super().__init__()
        self.norm1 = LayerNorm2d(dim, LayerNorm_type)
        self.attn = DynamicAttention(dim, num_heads, bias)
        self.norm2 = LayerNorm2d(dim, LayerNorm_type)
        self.ffn = DynamicFeedForward(dim, ffn_expansion_factor, bias)

    #: ``False`` (set by :func:`reference_path`): every forward runs the official operators.
    fast_path = True

    def forward(self, x: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
        if not self.fast_path:
            return self.forward_reference(x, prior)
        if torch.is_grad_enabled():
            return self.forward_train(x, prior)
        return self.forward_inference(x, prior)

    def forward_reference(self, x: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
        """The official operator sequence on NCHW maps."""
        x = x + self.attn(self.norm1(x), prior)
        return x + self.ffn(self.norm2(x), prior)

    def forward_train(self, x: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
        """The training forward: fused autograd-safe operators on channels-last tokens.

        Same function and gradients as :meth:`forward_reference` (tested); returns a
        channels-last map.
        """
        return self._fused(x, prior, inference=False)

    def forward_inference(self, x: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
        """The inference forward (no autograd): :meth:`forward_train`'s operators, plus what
        only holds without gradients: a single image's modulation folded into LN's affine
        (:func:`.fused.modulated_pointwise`) and the FFN residual added in place."""
        return self._fused(x, prior, inference=True)

    def _fused(self, x: torch.Tensor, prior: torch.Tensor, inference: bool) -> torch.Tensor:
        _, c, h, w = x.shape
        attn, ffn = self.attn, self.ffn
        # inference: the 1x1 outputs die in the depth-wise conv, so blocks share their buffers
        qkv_buffer, hidden_buffer = ('qkv', 'hidden') if inference else (None, None)
        tokens = to_tokens(x)
        qkv = _pointwise(tokens, self.norm1, prior, attn.kernel, attn.qkv, qkv_buffer)
        qkv = to_tokens(attn.qkv_dwconv(to_map(qkv, h, w)))  # (B, HW, 3C)
        tokens = attention_residual(tokens, qkv, attn.num_heads, attn.temperature,
                                    attn.project_out.weight, attn.project_out.bias)
        hidden = _pointwise(tokens, self.norm2, prior, ffn.kernel, ffn.project_in, hidden_buffer)
        gated = gated_gelu(to_tokens(ffn.dwconv(to_map(hidden, h, w))), dim=-1)  # (B, HW, hid)
        proj = ffn.project_out
        b, hw, hid = gated.shape
        weight = proj.weight.reshape(c, hid).t().to(gated.dtype)  # (hidden, C)
        flat = tokens.reshape(b * hw, c)
        if inference:  # tokens is this block's own temporary
            out = flat.addmm_(gated.reshape(b * hw, hid), weight)
        else:
            out = torch.addmm(flat, gated.reshape(b * hw, hid), weight)
        if proj.bias is not None:
            out = out + proj.bias.to(out.dtype)
        return to_map(out.reshape(b, hw, c), h, w)


@contextlib.contextmanager
def reference_path(module: nn.Module) -> Iterator[nn.Module]:
    """Within the block, every transformer block of ``module`` runs the official operators."""
    blocks = [m for m in module.modules() if isinstance(m, DynamicTransformerBlock)]
    for block in blocks:
        block.fast_path = False
    try:
        yield module
    finally:
        for block in blocks:
            del block.fast_path


class _Stage(nn.ModuleList):
    """A stack of transformer blocks sharing one prior (keys ``<stage>.<i>.*``).

    With ``with_cp`` each block is recomputed in the backward pass when autograd records.
    """

    def __init__(self, n: int, dim: int, num_heads: int, ffn_expansion_factor: float, bias: bool,
                 LayerNorm_type: str, with_cp: bool = False) -> None:  # noqa: N803
        super().__init__(
            DynamicTransformerBlock(dim, num_heads, ffn_expansion_factor, bias, LayerNorm_type)
            for _ in range(n))
        self.with_cp = with_cp

    def forward(self, x: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        checkpointed = self.with_cp and torch.is_grad_enabled() and (x.requires_grad
                                                                      or prior.requires_grad)
        for block in self:
            if checkpointed:
                x = torch_checkpoint.checkpoint(block, x, prior, use_reentrant=False)
            else:
                x = block(x, prior)
        return x


class _Resample(nn.Module):
    """3x3 conv + pixel (un)shuffle by 2 (keys ``body.0.weight``)."""

    def __init__(self, channels: int, down: bool) -> None:
        super().__init__()
        out = channels // 2 if down else channels * 2
        shuffle = nn.PixelUnshuffle(2) if down else nn.PixelShuffle(2)
        self.body = nn.Sequential(nn.Conv2d(channels, out, 3, padding=1, bias=False), shuffle)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class _PatchEmbed(nn.Module):
    def __init__(self, in_channels: int, dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_channels, dim, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)


def _sr_tail(channels: int, out_channels: int) -> nn.Sequential:
    """x4 pixel-shuffle tail: (conv 3x3 -> 4C, shuffle 2) twice, then conv 3x3 -> out."""
    upsampler = nn.Sequential(
        nn.Conv2d(channels, channels * 4, 3, padding=1), nn.PixelShuffle(2),
        nn.Conv2d(channels, channels * 4, 3, padding=1), nn.PixelShuffle(2))
    return nn.Sequential(upsampler, nn.Conv2d(channels, out_channels, 3, padding=1))


class DIRformer(nn.Module):
    """DiffIR's 4-level transformer U-Net whose every block is modulated by the IPR.

    Task heads:

    * ``'deblur'``: 3x3 conv output plus the input image (global residual).
    * ``'sr'``: the input is pixel-unshuffled by ``4 // scale`` (x2: 2, x1: 4), a x4 pixel-shuffle
      tail produces the HR image, plus the nearest-upsampled input.
    * ``'inpaint'``: 4-channel masked input, 3x3 conv output, no residual and no refinement.

    Args:
        task: One of :data:`TASKS`.
        scale: Super-resolution factor (4, 2 or 1); ignored by other tasks.
        inp_channels: Channels of the network input (3, or 4 for inpainting).
        out_channels: Output channels.
        dim: Width ``C`` of level 1 (levels use C, 2C, 4C, 8C).
        num_blocks: Blocks per level ``[N1, N2, N3, N4]``; the decoder reuses N3, N2, N1.
        num_refinement_blocks: Blocks of the refinement stage (at 2C).
        heads: Attention heads per level.
        ffn_expansion_factor: DGFN expansion.
        bias: Conv biases inside the blocks.
        LayerNorm_type: ``'WithBias'`` or ``'BiasFree'``.
        with_cp: Recompute each transformer block in backward (block checkpointing): less
            training memory for one more forward of the blocks; same gradients.
    """

    #: The input H and W must be multiples of this (after the SR input unshuffle).
    size_divisor = 8

    def __init__(self, task: str = 'deblur', scale: int = 4, inp_channels: int = 3,
                 out_channels: int = 3, dim: int = 48, num_blocks: Sequence[int] = (4, 6, 6, 8),
                 num_refinement_blocks: int = 4, heads: Sequence[int] = (1, 2, 4, 8),
                 ffn_expansion_factor: float = 2.66, bias: bool = False,
                 LayerNorm_type: str = 'WithBias', with_cp: bool = False) -> None:  # noqa: N803
        super().__init__()
        if task not in TASKS:
            raise ValueError(f'task must be one of {TASKS}, got {task!r}')
        if task == 'sr' and scale not in (1, 2, 4):
            raise ValueError(f'scale must be 1, 2 or 4 for task "sr", got {scale!r}')
        if task == 'inpaint' and num_refinement_blocks:
            raise ValueError('the inpainting DIRformer has no refinement stage '
                             f'(num_refinement_blocks must be 0, got {num_refinement_blocks})')
        self.task = task
        self.scale = scale if task == 'sr' else 1
        self.unshuffle = 4 // scale if task == 'sr' else 1
        stage_kw = dict(ffn_expansion_factor=ffn_expansion_factor, bias=bias,
                        LayerNorm_type=LayerNorm_type, with_cp=with_cp)
        c1, c2, c3, c4 = dim, dim * 2, dim * 4, dim * 8

        self.patch_embed = _PatchEmbed(inp_channels * self.unshuffle ** 2, c1)
        self.encoder_level1 = _Stage(num_blocks[0], c1, heads[0], **stage_kw)
        self.down1_2 = _Resample(c1, down=True)
        self.encoder_level2 = _Stage(num_blocks[1], c2, heads[1], **stage_kw)
        self.down2_3 = _Resample(c2, down=True)
        self.encoder_level3 = _Stage(num_blocks[2], c3, heads[2], **stage_kw)
        self.down3_4 = _Resample(c3, down=True)
        self.latent = _Stage(num_blocks[3], c4, heads[3], **stage_kw)

        self.up4_3 = _Resample(c4, down=False)
        self.reduce_chan_level3 = nn.Conv2d(c4, c3, 1, bias=bias)
        self.decoder_level3 = _Stage(num_blocks[2], c3, heads[2], **stage_kw)
        self.up3_2 = _Resample(c3, down=False)
        self.reduce_chan_level2 = nn.Conv2d(c3, c2, 1, bias=bias)
        self.decoder_level2 = _Stage(num_blocks[1], c2, heads[1], **stage_kw)
        self.up2_1 = _Resample(c2, down=False)
        self.decoder_level1 = _Stage(num_blocks[0], c2, heads[0], **stage_kw)
        self.refinement = _Stage(num_refinement_blocks, c2, heads[0], **stage_kw)

        if task == 'sr':
            self.tail = _sr_tail(c2, out_channels)
        else:
            self.output = nn.Conv2d(c2, out_channels, 3, padding=1, bias=bias)

    @property
    def input_multiple(self) -> int:
        """The image H and W must be multiples of this."""
        return self.size_divisor * self.unshuffle

    def forward(self, x: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
        """Restore ``x`` (B, inp_channels, H, W) under the IPR ``prior`` (B, 256)."""
        if torch.is_grad_enabled():
            return self._restore(x, prior)
        with scratch_buffers():  # the inference forward's blocks share their 1x1 outputs
            return self._restore(x, prior)

    def _restore(self, x: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
        feat = F.pixel_unshuffle(x, self.unshuffle) if self.unshuffle > 1 else x
        feat = feat.contiguous(memory_format=torch.channels_last)  # every conv runs channels-last
        enc1 = self.encoder_level1(self.patch_embed(feat), prior)
        enc2 = self.encoder_level2(self.down1_2(enc1), prior)
        enc3 = self.encoder_level3(self.down2_3(enc2), prior)
        latent = self.latent(self.down3_4(enc3), prior)

        dec3 = self.reduce_chan_level3(torch.cat([self.up4_3(latent), enc3], 1))
        dec3 = self.decoder_level3(dec3, prior)
        dec2 = self.reduce_chan_level2(torch.cat([self.up3_2(dec3), enc2], 1))
        dec2 = self.decoder_level2(dec2, prior)
        dec1 = self.decoder_level1(torch.cat([self.up2_1(dec2), enc1], 1), prior)
        dec1 = self.refinement(dec1, prior)

        if self.task == 'sr':
            up = x if self.scale == 1 else F.interpolate(x, scale_factor=self.scale, mode='nearest')
            out = self.tail(dec1) + up
        elif self.task == 'deblur':
            out = self.output(dec1) + x
        else:
            out = self.output(dec1)
        return out.contiguous()
