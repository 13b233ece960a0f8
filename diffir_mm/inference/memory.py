"""Will an untiled restoration fit? Its memory need, estimated, against what the device has.

A server must refuse an image it cannot hold rather than let the kernel's OOM killer end it, and
say which tile size would fit. The need is measured, not modelled:

* :func:`activation_bytes_per_pixel` runs the network's untiled inference (prior estimate, then
  DIRformer) once on a small probe image (64 x 64, on the network's device; the cost of one
  small forward pass) and records the peak of the bytes held by the tensors it creates (a
  storage counts while any tensor viewing it is alive), once per architecture (class and
  parameter shapes).
  DIRformer's channel attention makes every activation proportional to the pixel count, so the
  peak divided by the probe's pixels is a per-pixel cost (the same to 0.1 % with a 128 x 128
  probe for the released deblurring model);
* :func:`untiled_peak_bytes` scales it to an image, times :data:`MARGIN` for what the trace does
  not see (allocator rounding and fragmentation, library workspaces);
* :func:`available_bytes`: free memory of a CPU (``MemAvailable``, capped by a cgroup limit) or
  of a CUDA device (free plus what PyTorch's cache holds unused).

Networks the probe cannot run (an ONNX Runtime session) give ``None``: no estimate.
"""
from __future__ import annotations

import os
import weakref
from typing import Dict, Hashable, Optional, Union

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

__all__ = ['MARGIN', 'activation_bytes_per_pixel', 'untiled_peak_bytes', 'available_bytes']

#: Factor on the traced peak, for what the trace does not see; measured untiled restorations of
#: the released presets stay under it (``bench/bench_untiled_memory.py``, bench/README.md).
MARGIN = 1.5

#: Side of the probe image (rounded up to the network's input multiple).
PROBE_SIDE = 64

_PER_PIXEL: Dict[Hashable, Optional[float]] = {}


class _LiveBytes(TorchDispatchMode):
    """Counts the bytes of the storages that tensors created under it keep alive; keeps the peak."""

    def __init__(self) -> None:
        super().__init__()
        self.live = 0
        self.peak = 0
        self._views: Dict[int, int] = {}  # storage id -> tensors alive on it

    def _track(self, tensor: torch.Tensor) -> None:
        storage = tensor.untyped_storage()
        key, size = storage._cdata, storage.nbytes()
        if key not in self._views:
            self._views[key] = 0
            self.live += size
            self.peak = max(self.peak, self.live)
        self._views[key] += 1
        weakref.finalize(tensor, self._release, key, size)

    def _release(self, key: int, size: int) -> None:
        self._views[key] -= 1
        if not self._views[key]:
            del self._views[key]
            self.live -= size

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for leaf in tree_leaves(out):
            if isinstance(leaf, torch.Tensor):
                self._track(leaf)
        return out


def _architecture(network: nn.Module) -> Hashable:
    """What the trace depends on: the class and the shapes of the parameters and buffers."""
    shapes = tuple((name, tuple(t.shape)) for name, t in network.state_dict().items())
    return type(network).__module__, type(network).__qualname__, shapes


def activation_bytes_per_pixel(network: nn.Module) -> Optional[float]:
    """Peak bytes of live tensors per input pixel of an untiled fp32 restoration (cached).

    Returns ``None`` when ``network`` cannot be traced (not a PyTorch DiffIR network).
    """
    key = _architecture(network)
    if key in _PER_PIXEL:
        return _PER_PIXEL[key]
    result = None
    try:
        device = next(network.parameters()).device
        multiple = int(getattr(network, 'input_multiple', 1))
        side = -(-PROBE_SIDE // multiple) * multiple
        channels = network.lq_prior_channels // network.lq_unshuffle ** 2  # 4 for inpainting
        generator = torch.Generator(device).manual_seed(0)
        with torch.inference_mode(), _LiveBytes() as counter:
            lq = torch.rand(1, channels, side, side, generator=generator, device=device)
            noise = torch.randn(1, 256, generator=generator, device=device)
            out = network.restore(lq, network.estimate_prior(lq, noise))
            del lq, noise, out
        result = counter.peak / (side * side)
    except Exception:  # noqa: BLE001 - any failure only means "no estimate"
        result = None
    _PER_PIXEL[key] = result
    return result


def untiled_peak_bytes(network: nn.Module, height: int, width: int) -> Optional[int]:
    """Estimated memory to restore an ``height`` x ``width`` image in one piece (fp32).

    Includes :data:`MARGIN`; ``None`` when :func:`activation_bytes_per_pixel` has no estimate.
    """
    per_pixel = activation_bytes_per_pixel(network)
    if per_pixel is None:
        return None
    multiple = int(getattr(network, 'input_multiple', 1))
    padded = (-(-height // multiple) * multiple) * (-(-width // multiple) * multiple)
    return int(per_pixel * padded * MARGIN)


def _cgroup_headroom() -> Optional[int]:
    """Bytes left under a cgroup v2 memory limit, or None without a limit."""
    try:
        with open('/sys/fs/cgroup/memory.max', encoding='ascii') as fh:
            limit = fh.read().strip()
        if limit == 'max':
            return None
        with open('/sys/fs/cgroup/memory.current', encoding='ascii') as fh:
            used = int(fh.read().strip())
        return max(int(limit) - used, 0)
    except (OSError, ValueError):
        return None


def available_bytes(device: Union[str, torch.device]) -> Optional[int]:
    """Memory a restoration on ``device`` can still take, or None where it cannot be read."""
    device = torch.device(device)
    if device.type == 'cuda':
        free, _ = torch.cuda.mem_get_info(device)
        cached = torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
        return int(free + cached)
    if device.type != 'cpu':
        return None
    free = None
    try:
        with open('/proc/meminfo', encoding='ascii') as fh:
            for line in fh:
                if line.startswith('MemAvailable:'):
                    free = int(line.split()[1]) * 1024
                    break
    except (OSError, ValueError):
        free = None
    if free is None and hasattr(os, 'sysconf'):
        try:
            free = os.sysconf('SC_AVPHYS_PAGES') * os.sysconf('SC_PAGE_SIZE')
        except (OSError, ValueError):
            free = None
    headroom = _cgroup_headroom()
    if free is None:
        return headroom
    return free if headroom is None else min(free, headroom)
