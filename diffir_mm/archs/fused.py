"""Fused channels-last operators of the DIRformer block (the fast path, issue 14).

The reference block (official operator order) runs on NCHW maps: a LayerNorm over the strided
channel axis built from five element-wise passes, the IPR modulation ``x * s + t``, 1x1
convolutions, ``F.normalize`` on q and k, ``A @ v`` and ``project_out`` as two products. The fast
path computes the same function on a token-major ``(B, HW, C)`` residual stream (a channels-last
map viewed without copies):

* the LayerNorm is one ``F.layer_norm`` over the contiguous channel axis (fused forward and
  backward kernels); its affine ``(w, b)`` and the modulation ``(s, t)`` fold into the following
  1x1 convolution as the per-sample weight ``W diag(w * s)`` and bias ``W (b * s + t)``, so one
  batched GEMM follows the normalisation (:func:`folded_pointwise`);
* the depth-wise 3x3 convolutions run on channels-last maps (oneDNN's fast layout for them);
* attention scales ``q @ k^T`` by ``temperature / (|q_i| |k_j|)`` instead of normalising q and k,
  and folds the attention map into ``project_out`` (``Wp blockdiag(A)``, a C x C matrix), whose
  product with v also adds the residual (:func:`attention_residual`);
* the gated FFN ``gelu(x1) * x2`` is one autograd function that keeps only its input for the
  backward and writes both input gradients into one buffer (:class:`GatedGelu`), and the FFN's
  ``project_out`` adds the residual in its GEMM.

Everything here is autograd-safe (training uses it; gradients equal the reference path's, see
tests/test_archs/test_fast_path.py), torch only, and keeps the input dtype.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

__all__ = ['GatedGelu', 'attention_residual', 'folded_pointwise', 'gated_gelu', 'to_map',
           'to_tokens']

#: ``F.normalize``'s default floor of the q / k norms.
NORM_EPS = 1e-12


def to_tokens(x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) map -> (B, HW, C) tokens; a view for channels-last maps, else one copy."""
    b, c, h, w = x.shape
    return x.permute(0, 2, 3, 1).reshape(b, h * w, c)


def to_map(tokens: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """(B, HW, C) contiguous tokens -> the (B, C, H, W) channels-last map (a view)."""
    b, hw, c = tokens.shape
    return tokens.transpose(1, 2).reshape(b, c, h, w)


def folded_pointwise(tokens: torch.Tensor, norm_weight: Optional[torch.Tensor],
                     norm_bias: Optional[torch.Tensor], centred: bool, eps: float,
                     scale: torch.Tensor, shift: torch.Tensor, conv_weight: torch.Tensor,
                     conv_bias: Optional[torch.Tensor]) -> torch.Tensor:
    """``conv1x1(s * LN(x) + t)`` on (B, HW, C) tokens as LayerNorm + one batched GEMM.

    ``conv(s * (w * n + b) + t) = n (W diag(s * w))^T + W (s * b + t) + c`` for the normalised
    ``n``: the LayerNorm affine and the per-sample modulation become a per-sample weight.

    Args:
        tokens: (B, HW, C) input.
        norm_weight: LayerNorm weight ``w`` (C,).
        norm_bias: LayerNorm bias ``b`` (C,) or None (BiasFree).
        centred: ``True``: ``n = (x - mean) / sigma`` (WithBias); ``False``: ``n = x / sigma``
            with the variance still taken around the mean (Restormer's BiasFree).
        eps: Added to the biased variance.
        scale: Modulation scale ``s`` (B, C).
        shift: Modulation shift ``t`` (B, C).
        conv_weight: 1x1 convolution weight (C_out, C, 1, 1).
        conv_bias: Its bias (C_out,) or None.

    Returns:
        (B, HW, C_out) tokens, contiguous.
    """
    dtype = tokens.dtype
    c = tokens.shape[-1]
    stats = tokens.float() if dtype in (torch.float16, torch.bfloat16) else tokens
    if centred:
        normed = F.layer_norm(stats, (c,), eps=eps)
    else:
        var = stats.var(dim=-1, keepdim=True, unbiased=False)
        normed = stats * torch.rsqrt(var + eps)
    normed = normed.to(dtype)
    weight = conv_weight.reshape(conv_weight.shape[0], c).to(dtype)
    gain = scale * norm_weight.to(dtype)
    offset = shift if norm_bias is None else shift + scale * norm_bias.to(dtype)
    bias = offset @ weight.t()  # (B, C_out)
    if conv_bias is not None:
        bias = bias + conv_bias.to(dtype)
    folded = (weight[None] * gain[:, None, :]).transpose(1, 2)  # (B, C, C_out)
    return torch.baddbmm(bias[:, None, :], normed, folded)


def attention_residual(residual: torch.Tensor, qkv: torch.Tensor, num_heads: int,
                       temperature: torch.Tensor, proj_weight: torch.Tensor,
                       proj_bias: Optional[torch.Tensor]) -> torch.Tensor:
    """``residual + project_out(softmax(q^ k^^T * temperature) v)`` on tokens.

    ``q^``/``k^`` are q and k normalised over the pixels; the normalisation is applied to the
    small (C/heads)^2 score matrix instead, and ``project_out`` absorbs the attention map.

    Args:
        residual: (B, HW, C) tokens added to the output.
        qkv: (B, HW, 3C) tokens (q, k, v along the channels, heads contiguous in each).
        num_heads: Attention heads.
        temperature: (heads, 1, 1) learnt scale of the scores.
        proj_weight: ``project_out`` weight (C, C, 1, 1).
        proj_bias: Its bias (C,) or None.

    Returns:
        (B, HW, C) tokens.
    """
    b, hw, c3 = qkv.shape
    c = c3 // 3
    ch = c // num_heads
    q, k, v = qkv.split(c, dim=-1)  # (B, HW, C) views
    # per head: q_h, k_h are (HW, ch) column blocks; S_h = q_h^T k_h
    qh = q.reshape(b, hw, num_heads, ch).permute(0, 2, 3, 1)  # (B, heads, ch, HW)
    kh = k.reshape(b, hw, num_heads, ch).permute(0, 2, 1, 3)  # (B, heads, HW, ch)
    scores = qh @ kh
    inv_q = torch.linalg.vector_norm(qh, dim=-1).clamp_min(NORM_EPS).reciprocal()
    inv_k = torch.linalg.vector_norm(kh, dim=-2).clamp_min(NORM_EPS).reciprocal()
    logits = scores * (inv_q[..., :, None] * inv_k[..., None, :] * temperature)
    attn = torch.softmax(logits, dim=-1)  # (B, heads, ch, ch)
    proj = proj_weight.reshape(c, num_heads, ch).to(qkv.dtype)
    mixed = torch.einsum('ohi,bhij->bhjo', proj, attn).reshape(b, c, c)  # (Wp blockdiag A)^T
    out = torch.baddbmm(residual, v, mixed)
    if proj_bias is not None:
        out = out + proj_bias.to(qkv.dtype)
    return out


class GatedGelu(torch.autograd.Function):
    """``gelu(x1) * x2`` for ``x1, x2 = hidden.chunk(2, -1)`` with a hand-written backward.

    Saves only ``hidden`` (no ``gelu(x1)`` temporary) and writes both halves of the input
    gradient into one buffer (no ``cat`` of the chunk gradients).
    """

    @staticmethod
    def forward(ctx, hidden: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        x1, x2 = hidden.chunk(2, dim=-1)
        ctx.save_for_backward(hidden)
        return F.gelu(x1) * x2

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        (hidden,) = ctx.saved_tensors
        x1, x2 = hidden.chunk(2, dim=-1)
        grad_hidden = torch.empty_like(hidden)
        g1, g2 = grad_hidden.chunk(2, dim=-1)
        torch.mul(grad, F.gelu(x1), out=g2)
        torch.ops.aten.gelu_backward.grad_input(grad * x2, x1, grad_input=g1)
        return grad_hidden


def gated_gelu(hidden: torch.Tensor) -> torch.Tensor:
    """``gelu(x1) * x2`` of the two channel halves of (..., 2h) ``hidden``."""
    if torch.is_grad_enabled() and hidden.requires_grad:
        return GatedGelu.apply(hidden)
    x1, x2 = hidden.chunk(2, dim=-1)
    return F.gelu(x1) * x2
