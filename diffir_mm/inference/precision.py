"""Running the restoration network in fp32, bf16 or fp16, with a guard against non-finite output.

Policy (the same for every entry point: :class:`~diffir_mm.inference.Restorer`, the tiled path and
``diffir-restore``):

* ``auto`` (the default of the Restorer, ``restore_tiled`` and ``diffir-restore``) is chosen per
  device by :func:`resolve_precision`: ``bf16`` on CUDA devices with bf16 matrix units (compute
  capability 8.0+: Ampere, Hopper and later), ``fp32`` everywhere else (CPUs, older GPUs).
  bf16 keeps fp32's exponent range, so the overflow that fp16 risks does not arise; its 8-bit
  mantissa keeps the output within 1e-2 relative error ``|a - b| / |b|`` of fp32 (tested on the
  CPU for every task, ``BF16_REL_TOL`` of tests/helpers.py; measured 4e-4 to 4e-3 there). The
  table :data:`AUTO_PRECISION` is the one place to change that choice.
* ``fp32`` runs as is.
* ``bf16`` / ``fp16`` run the DIRformer under :func:`torch.autocast` of the input's device
  (CPU or CUDA); weights stay fp32 and autocast picks the per-op precision. The output is
  returned as fp32.
* The global prior (CPEN + 4-step diffusion, a small fraction of the compute) is always estimated
  in fp32, so every tile of an image shares a full-precision IPR.
* After each reduced-precision forward (one call per tile batch), the output is checked with
  :func:`torch.isfinite`. fp16 overflows (activations above 65504 inside the LayerNorm variance,
  say) show up as NaN/Inf, which would be written as black or garbage pixels. Such a forward is
  **recomputed in fp32 and a** :class:`PrecisionFallbackWarning` **is issued** (``fallback=True``,
  the default); with ``fallback=False`` a :class:`NonFiniteOutputError` is raised instead
  (refuse). Finite results are never recomputed, so the fallback costs nothing when fp16 works.
* A non-finite fp32 output always raises :class:`NonFiniteOutputError` (nothing is written).
"""
from __future__ import annotations

import contextlib
import warnings
from typing import Any, Callable, ContextManager, Union

import torch

__all__ = ['PRECISIONS', 'AUTO_PRECISION', 'PrecisionFallbackWarning', 'NonFiniteOutputError',
           'normalize_precision', 'resolve_precision', 'autocast_context', 'run_with_precision']

#: Accepted precision names (``'auto'``: see :func:`resolve_precision`).
PRECISIONS = ('auto', 'fp32', 'bf16', 'fp16')
#: What ``'auto'`` selects per device type; device types not listed run fp32.
AUTO_PRECISION = {'cuda': 'bf16'}
#: Lowest CUDA compute capability with bf16 matrix units (Ampere).
BF16_MIN_CAPABILITY = (8, 0)
_ALIASES = {'auto': 'auto', 'fp32': 'fp32', 'float32': 'fp32', 'float': 'fp32', 'bf16': 'bf16',
            'bfloat16': 'bf16', 'fp16': 'fp16', 'float16': 'fp16', 'half': 'fp16'}
_DTYPES = {'bf16': torch.bfloat16, 'fp16': torch.float16}


class PrecisionFallbackWarning(UserWarning):
    """A reduced-precision forward produced NaN/Inf and was recomputed in fp32."""


class NonFiniteOutputError(RuntimeError):
    """The network output contains NaN/Inf and no fallback applies."""


def normalize_precision(precision: Union[str, torch.dtype, None]) -> str:
    """Map ``'auto'|'fp32'|'bf16'|'fp16'`` (or aliases / a torch dtype / None: fp32) to the
    canonical name."""
    if precision is None:
        return 'fp32'
    if isinstance(precision, torch.dtype):
        precision = {torch.float32: 'fp32', torch.bfloat16: 'bf16',
                     torch.float16: 'fp16'}.get(precision, str(precision))
    name = _ALIASES.get(str(precision).lower())
    if name is None:
        raise ValueError(f'precision must be one of {PRECISIONS}, got {precision!r}')
    return name


def _has_bf16_units(device: torch.device) -> bool:
    return torch.cuda.get_device_capability(device) >= BF16_MIN_CAPABILITY


def resolve_precision(precision: Union[str, torch.dtype, None],
                      device: Union[str, torch.device]) -> str:
    """The precision (``'fp32'``, ``'bf16'`` or ``'fp16'``) that ``precision`` means on ``device``.

    Explicit names are kept; ``'auto'`` is :data:`AUTO_PRECISION` of the device type (bf16 on
    CUDA), falling back to fp32 on CUDA devices older than :data:`BF16_MIN_CAPABILITY`.
    """
    name = normalize_precision(precision)
    if name != 'auto':
        return name
    device = torch.device(device)
    choice = AUTO_PRECISION.get(device.type, 'fp32')
    if choice == 'bf16' and device.type == 'cuda' and not _has_bf16_units(device):
        return 'fp32'
    return choice


def autocast_context(device: Union[str, torch.device], precision: str) -> ContextManager:
    """Autocast context for ``precision`` on ``device`` (a null context for fp32)."""
    precision = resolve_precision(precision, device)
    if precision == 'fp32':
        return contextlib.nullcontext()
    device_type = torch.device(device).type
    return torch.autocast(device_type=device_type, dtype=_DTYPES[precision])


def _all_finite(out: Any) -> bool:
    if isinstance(out, torch.Tensor):
        return bool(torch.isfinite(out).all())
    if isinstance(out, (list, tuple)):
        return all(_all_finite(o) for o in out)
    return True


def _to_float(out: Any) -> Any:
    if isinstance(out, torch.Tensor):
        return out.float() if out.is_floating_point() else out
    if isinstance(out, (list, tuple)):
        return type(out)(_to_float(o) for o in out)
    return out


def run_with_precision(fn: Callable[..., Any], *args: Any, precision: str = 'fp32',
                       device: Union[str, torch.device, None] = None, fallback: bool = True,
                       what: str = 'the network', **kwargs: Any) -> Any:
    """Call ``fn(*args, **kwargs)`` in ``precision`` and return fp32 result(s).

    Args:
        fn: The forward to run (e.g. ``net.restore``).
        precision: ``'auto'``, ``'fp32'``, ``'bf16'`` or ``'fp16'``.
        device: Device whose autocast is used; by default that of the first tensor argument.
        fallback: On non-finite reduced-precision output, recompute in fp32 with a
            :class:`PrecisionFallbackWarning` (True) or raise :class:`NonFiniteOutputError`.
        what: Name used in the messages.

    Raises:
        NonFiniteOutputError: Non-finite output in fp32, or in reduced precision without fallback.
    """
    if device is None:
        device = next((a.device for a in args if isinstance(a, torch.Tensor)), 'cpu')
    precision = resolve_precision(precision, device)
    with autocast_context(device, precision):
        out = fn(*args, **kwargs)
    out = _to_float(out)
    if _all_finite(out):
        return out
    if precision == 'fp32':
        raise NonFiniteOutputError(f'{what} produced NaN/Inf values in fp32 '
                                   '(check the input and the checkpoint)')
    if not fallback:
        raise NonFiniteOutputError(f'{what} produced NaN/Inf values in {precision}; '
                                   'rerun with precision fp32')
    warnings.warn(f'{what} produced NaN/Inf values in {precision}; recomputed in fp32',
                  PrecisionFallbackWarning, stacklevel=2)
    del out
    out = _to_float(fn(*args, **kwargs))
    if not _all_finite(out):
        raise NonFiniteOutputError(f'{what} produced NaN/Inf values in {precision} and in fp32 '
                                   '(check the input and the checkpoint)')
    return out
