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
* the 1x1 GEMMs write tokens, so the depth-wise 3x3 convolutions read channels-last maps
  without a copy: oneDNN runs them 2-9x faster in that layout than in NCHW on this CPU, forward
  and backward (bench/README.md);
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

import contextlib
import contextvars
from typing import Dict, Iterator, Optional, Tuple

import torch
import torch.nn.functional as F

__all__ = ['GatedGelu', 'attention_residual', 'folded_pointwise', 'gated_gelu', 'pixel_gram',
           'modulated_pointwise', 'scratch_buffers', 'to_map', 'to_tokens']

#: ``F.normalize``'s default floor of the q / k norms.
NORM_EPS = 1e-12


def to_tokens(x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) map -> (B, HW, C) tokens; a view for channels-last maps, else one copy."""
    b, c, h, w = x.shape
    return x.permute(0, 2, 3, 1).reshape(b, h * w, c)


def to_map(tokens: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """(B, HW, C) contiguous tokens -> the (B, C, H, W) channels-last map (a view).

    The view keeps the batch stride ``H * W * C`` even for a batch of one: with any other stride
    of that size-1 axis the map still counts as channels-last, yet oneDNN copies it to NCHW
    before a depth-wise convolution (4-9x slower here).
    """
    b, hw, c = tokens.shape
    return tokens.reshape(b, h, w, c).permute(0, 3, 1, 2)


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
        (B, HW, C_out) tokens, contiguous (a channels-last map once viewed by :func:`to_map`:
        the layout oneDNN runs the depth-wise convolution that follows fastest in).
    """
    dtype = tokens.dtype
    c = int(norm_weight.shape[0])  # a Python int: static for tracers and exporters
    stats = tokens.float() if dtype in (torch.float16, torch.bfloat16) else tokens
    if centred:
        normed = F.layer_norm(stats, (c,), eps=eps)
    else:
        # mean of squared deviations over the contiguous axis: torch.var is ~10x slower here
        centred = stats - stats.mean(dim=-1, keepdim=True)
        var = centred.square().mean(dim=-1, keepdim=True)
        normed = stats * torch.rsqrt(var + eps)
    normed = normed.to(dtype)
    weight = conv_weight.reshape(conv_weight.shape[0], c).to(dtype)
    gain = scale * norm_weight.to(dtype)
    offset = shift if norm_bias is None else shift + scale * norm_bias.to(dtype)
    bias = offset @ weight.t()  # (B, C_out)
    if conv_bias is not None:
        bias = bias + conv_bias.to(dtype)
    folded = weight[None] * gain[:, None, :]  # (B, C_out, C)
    return torch.baddbmm(bias[:, None, :], normed, folded.transpose(1, 2))


def _exporting() -> bool:
    """Whether a tracer or exporter records the graph (it must see the batch-generic ops)."""
    return torch.jit.is_tracing() or torch.onnx.is_in_onnx_export()


_SCRATCH: contextvars.ContextVar[Optional[Dict[Tuple, torch.Tensor]]] = contextvars.ContextVar(
    'diffir_scratch_buffers', default=None)


@contextlib.contextmanager
def scratch_buffers() -> Iterator[None]:
    """Inside the ``with``, :func:`modulated_pointwise` writes into buffers reused across blocks.

    Its outputs live only until the depth-wise convolution that reads them, so every block of a
    resolution can reuse one buffer: on CPU a fresh large tensor page-faults all its memory on
    the first write, which costs as much as the memory-bound GEMM itself (bench/README.md).
    Inference only; the buffers are dropped on exit.
    """
    token = _SCRATCH.set({})
    try:
        yield
    finally:
        _SCRATCH.reset(token)


def _scratch(name: str, shape: Tuple[int, ...], like: torch.Tensor) -> Optional[torch.Tensor]:
    pool = _SCRATCH.get()
    if pool is None:
        return None
    key = (name, shape, like.dtype, like.device)
    if key not in pool:
        pool[key] = torch.empty(shape, dtype=like.dtype, device=like.device)
    return pool[key]


def modulated_pointwise(tokens: torch.Tensor, norm_weight: torch.Tensor,
                        norm_bias: Optional[torch.Tensor], centred: bool, eps: float,
                        scale: torch.Tensor, shift: torch.Tensor, conv_weight: torch.Tensor,
                        conv_bias: Optional[torch.Tensor],
                        scratch: Optional[str] = None) -> torch.Tensor:
    """:func:`folded_pointwise` without autograd; one image: the modulation joins LN's affine.

    For a batch of one the per-sample modulation is a per-channel affine, so ``s * LN(x) + t``
    is one ``F.layer_norm`` with weight ``s * w`` and bias ``s * b + t`` and the 1x1 convolution
    is a plain GEMM with the shared weight: no broadcast bias written into the output before the
    GEMM (a full pass over a memory-bound map). BiasFree ``x / sigma = n + mean / sigma`` takes
    ``mean`` and ``1 / sigma`` from ``torch.native_layer_norm``: one extra in-place pass instead
    of three. Batches, half precision and exporters take :func:`folded_pointwise`.

    Args:
        tokens, norm_weight, norm_bias, centred, eps, scale, shift, conv_weight, conv_bias: As
            :func:`folded_pointwise`.
        scratch: Name of the :func:`scratch_buffers` buffer to write into (when one is active):
            the caller must be done with the previous output of that name.

    Returns:
        (B, HW, C_out) tokens, contiguous.
    """
    b, hw, c = tokens.shape
    if b != 1 or tokens.dtype != torch.float32 or _exporting():
        return folded_pointwise(tokens, norm_weight, norm_bias, centred, eps, scale, shift,
                                conv_weight, conv_bias)
    gain = scale[0] * norm_weight
    offset = shift[0] if norm_bias is None else shift[0] + scale[0] * norm_bias
    modulated, mean, rstd = torch.native_layer_norm(tokens, (c,), gain, offset, eps)
    if not centred:  # x * r * g + t = (n * g + t) + (mean * r) g
        modulated.addcmul_(mean * rstd, gain)
    weight = conv_weight.reshape(conv_weight.shape[0], c)
    flat = modulated.reshape(hw, c)
    out = _scratch(scratch, (hw, weight.shape[0]), flat) if scratch else None
    if conv_bias is None:
        out = torch.mm(flat, weight.t(), out=out)
    else:
        out = torch.addmm(conv_bias, flat, weight.t(), out=out)
    return out.reshape(1, hw, -1)


#: Pixels per partial product of :func:`pixel_gram` on CUDA.
GRAM_CHUNK = 4096


def pixel_gram(q: torch.Tensor, k: torch.Tensor, num_heads: int,
               chunk: Optional[int] = None) -> torch.Tensor:
    """Per-head ``q^T k`` summed over the pixels: (B, HW, C) x 2 -> (B, heads, C/heads, C/heads).

    The product is skinny (a few dozen rows and columns, up to millions of pixels summed). On
    CUDA, cuBLAS runs such a product as a handful of thread blocks (an H200 took 4.5 ms for
    48 x 1M x 48, a 0.25 ms job: bench/README.md, GPU suite), so there the pixels are cut into
    chunks of ``chunk`` (default :data:`GRAM_CHUNK`) whose partial products run as one batch and
    are then summed. The CPU keeps the single product unless ``chunk`` is given.
    """
    b, hw, c = q.shape
    ch = c // num_heads
    if chunk is None:
        chunk = GRAM_CHUNK if q.is_cuda else hw
    chunks = hw // chunk
    if chunks < 2:
        qh = q.reshape(b, hw, num_heads, ch).permute(0, 2, 3, 1)  # (B, heads, ch, HW)
        kh = k.reshape(b, hw, num_heads, ch).transpose(1, 2)  # (B, heads, HW, ch)
        return qh @ kh
    split = chunks * chunk
    qc = q[:, :split].reshape(b, chunks, chunk, num_heads, ch).permute(0, 1, 3, 4, 2)
    kc = k[:, :split].reshape(b, chunks, chunk, num_heads, ch).transpose(2, 3)
    gram = (qc @ kc).sum(dim=1)  # (B, heads, ch, ch)
    if split < hw:
        gram = gram + pixel_gram(q[:, split:], k[:, split:], num_heads, chunk=hw)
    return gram


def attention_residual(residual: torch.Tensor, qkv: torch.Tensor, num_heads: int,
                       temperature: torch.Tensor, proj_weight: torch.Tensor,
                       proj_bias: Optional[torch.Tensor]) -> torch.Tensor:
    """``residual + project_out(softmax(q^ k^^T * temperature) v)`` on tokens.

    ``q^``/``k^`` are q and k normalised over the pixels; the normalisation is applied to the
    small (C/heads)^2 score matrix instead, and ``project_out`` absorbs the attention map.

    Args:
        residual: (B, HW, C) tokens added to the output.
        qkv: (B, HW, 3C) tokens: q, k, v along the channels (heads contiguous in each).
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
    q, k, v = qkv.split(c, dim=-1)  # (B, HW, C) strided views
    # the un-normalised scores sum over all pixels: half precision would overflow, so half
    # inputs get float32 scores (the reference normalises q and k first, bounding them by 1),
    # also under autocast, which would run the product in half precision again
    score_dtype = torch.float32 if qkv.dtype in (torch.float16, torch.bfloat16) else qkv.dtype
    q = q.to(score_dtype)
    k = k.to(score_dtype)
    with torch.autocast(qkv.device.type, enabled=False):
        scores = pixel_gram(q, k, num_heads)
    # norms over the pixels: a reduction over the outer axis, vectorised along the channels
    inv_q = torch.linalg.vector_norm(q, dim=1).clamp_min(NORM_EPS).reciprocal()
    inv_k = torch.linalg.vector_norm(k, dim=1).clamp_min(NORM_EPS).reciprocal()
    inv_q = inv_q.reshape(b, num_heads, ch, 1)
    inv_k = inv_k.reshape(b, num_heads, 1, ch)
    logits = scores * (inv_q * inv_k * temperature)
    attn = torch.softmax(logits, dim=-1).to(qkv.dtype)  # (B, heads, ch, ch)
    proj = proj_weight.reshape(c, num_heads, ch).to(qkv.dtype)
    mixed = torch.einsum('ohi,bhij->bhjo', proj, attn).reshape(b, c, c)  # (Wp blockdiag A)^T
    out = torch.baddbmm(residual, v, mixed)
    if proj_bias is not None:
        out = out + proj_bias.to(qkv.dtype)
    return out


class GatedGelu(torch.autograd.Function):
    """``gelu(x1) * x2`` for ``x1, x2 = hidden.chunk(2, dim)`` with a hand-written backward.

    Saves only ``hidden`` (no ``gelu(x1)`` temporary) and writes both halves of the input
    gradient into one buffer (no ``cat`` of the chunk gradients).
    """

    @staticmethod
    def forward(ctx, hidden: torch.Tensor, dim: int) -> torch.Tensor:  # type: ignore[override]
        x1, x2 = hidden.chunk(2, dim=dim)
        ctx.save_for_backward(hidden)
        ctx.dim = dim
        return F.gelu(x1) * x2

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        (hidden,) = ctx.saved_tensors
        x1, x2 = hidden.chunk(2, dim=ctx.dim)
        grad_hidden = torch.empty_like(hidden)
        g1, g2 = grad_hidden.chunk(2, dim=ctx.dim)
        torch.mul(grad, F.gelu(x1), out=g2)
        torch.ops.aten.gelu_backward.grad_input(grad * x2, x1, grad_input=g1)
        return grad_hidden, None


def gated_gelu(hidden: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """``gelu(x1) * x2`` of the two halves of ``hidden`` along ``dim``."""
    if torch.is_grad_enabled() and hidden.requires_grad:
        return GatedGelu.apply(hidden, dim)
    x1, x2 = hidden.chunk(2, dim=dim)
    return F.gelu(x1).mul_(x2)  # in place: no second temporary
