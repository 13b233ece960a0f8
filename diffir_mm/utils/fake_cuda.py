"""A simulated CUDA device on a CPU-only machine: the mechanism of the device audit.

Inside :func:`simulated_cuda`, PyTorch's ``FakeTensorMode`` turns every tensor into a *fake* one:
it has a shape, a dtype and a device but no values, and operators only compute the metadata of
their results. ``module.to('cuda')`` and ``tensor.to('cuda')`` therefore work without a GPU, and
an operator that meets a CPU tensor and a CUDA tensor raises ``FakeTensorDeviceMismatchError``
exactly where the real device would refuse (0-dim CPU tensors are allowed, as on CUDA). Real
tensors used inside the context (module constants, CPU batches) take part as CPU tensors.

What the simulation adds around the mode, so that training and inference code runs unchanged:

* ``torch.cuda`` answers as one Hopper GPU (available, one device, compute capability 9.0,
  bf16 supported), and mmengine's device (``get_device()``, fixed when mmengine is imported)
  is ``'cuda'``, so CUDA autocast, ``precision='auto'`` and mmengine's ``AmpOptimWrapper`` take
  their GPU paths; CUDA random states are CPU byte tensors, as the real ones;
* ``torch.Generator(device='cuda')`` is a CPU generator that reports the CUDA device; restoring
  a random state (of a generator, the global CPU or CUDA generators) requires a CPU byte tensor,
  as PyTorch does, and states without values (fake) are checked and not installed;
* backward passes do not run (the autograd engine needs a real device): ``torch.autograd.backward``
  records the loss in :attr:`SimulatedCuda.losses`, ``torch.autograd.grad`` returns zeros shaped
  like the inputs (the gradient penalties still compute on them), so optimizers see no gradients;
* ``torch.load`` reads files for real (a device ``map_location`` then maps the tensors);
* the host reads of :mod:`diffir_mm.utils.host_reads` answer with placeholders (``True`` / 1, or
  the values given to :func:`simulated_cuda`); any other read of a fake value
  (``.item()``, ``bool(t)``, ``.tolist()``) raises ``DataDependentOutputException``, and
  ``.numpy()`` raises too, except for host copies inside :meth:`SimulatedCuda.host_copies`.

What it guarantees: every tensor that the simulated code creates or receives is on the device
that the operators using it expect. What it does not: numerics, speed, memory, the backward pass
and custom CUDA kernels (see ``docs/user_guides/train_test.md``, "Running on GPUs").
"""
from __future__ import annotations

import contextlib
import warnings
from typing import Any, Iterable, Iterator, List, Optional, Union

import numpy as np
import torch
from torch._subclasses.fake_tensor import FakeTensor, FakeTensorMode, unset_fake_temporarily
from torch.utils import _pytree as pytree

from . import host_reads

__all__ = ['SimulatedCuda', 'simulated_cuda', 'is_fake', 'to_device']

#: What the simulated ``torch.cuda`` reports (an H200).
CAPABILITY = (9, 0)
DEVICE_NAME = 'simulated CUDA device (diffir_mm.utils.fake_cuda)'


def _on_cuda(value: Any) -> bool:
    if isinstance(value, torch.device):
        return value.type == 'cuda'
    if isinstance(value, str) and value.split(':')[0] == 'cuda':
        return True
    return False


class _FakeCudaMode(FakeTensorMode):
    """Operators on CUDA tensors (and creating them) run fake; CPU-only operators run for real.

    Host-side work keeps its values (shapes computed with CPU tensors, random states, CPU
    generators); everything that touches the simulated device goes through ``FakeTensorMode``,
    which also takes the real CPU tensors that meet device tensors and refuses the mismatches.
    The mode never touches a real device, whatever ``torch.cuda`` says.
    """

    _depth = 0  # > 0 while a fake operator runs (its decompositions stay fake)

    @property
    def avoid_device_init(self) -> bool:  # type: ignore[override]
        return True

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        leaves = pytree.arg_tree_leaves(*args, **kwargs)
        if self._depth or any(is_fake(leaf) or _on_cuda(leaf) for leaf in leaves):
            if not self._depth:  # real inputs of a device operator join as fake CPU tensors
                args, kwargs = pytree.tree_map_only(
                    torch.Tensor, lambda t: t if is_fake(t) else self.from_tensor(t),
                    (args, kwargs))
            self._depth += 1
            try:
                return super().__torch_dispatch__(func, types, args, kwargs)
            finally:
                self._depth -= 1
        return func(*args, **kwargs)  # the mode is off inside its handler: a real CPU operator


def is_fake(value: Any) -> bool:
    """Whether ``value`` is a tensor of the simulation (without values)."""
    return isinstance(value, FakeTensor)


def _check_state(state: Any, what: str) -> bool:
    """Refuse what PyTorch refuses as a random state; True when ``state`` has real values."""
    if not isinstance(state, torch.Tensor) or state.dtype != torch.uint8 or \
            state.device.type != 'cpu':
        device = getattr(state, 'device', None)
        raise TypeError(f'{what}: RNG state must be a torch.ByteTensor on the CPU, got '
                        f'{type(state).__name__} on {device}')
    return not is_fake(state)


class _CudaGenerator(torch._C.Generator):
    """A CPU generator standing for a ``torch.Generator(device='cuda')``."""

    def __new__(cls, device: Any = 'cuda') -> '_CudaGenerator':
        return super().__new__(cls)

    def __init__(self, device: Any = 'cuda') -> None:
        index = torch.device(device).index
        self._device = torch.device('cuda', 0 if index is None else index)

    @property
    def device(self) -> torch.device:  # type: ignore[override]
        return self._device

    def set_state(self, new_state: torch.Tensor) -> '_CudaGenerator':  # type: ignore[override]
        if _check_state(new_state, 'Generator.set_state'):
            super().set_state(new_state)
        return self


class _GeneratorMeta(type):
    def __instancecheck__(cls, obj: Any) -> bool:
        return isinstance(obj, torch._C.Generator)

    def __subclasscheck__(cls, sub: type) -> bool:
        return issubclass(sub, torch._C.Generator)


class _Generator(metaclass=_GeneratorMeta):
    """Stands for ``torch.Generator``: CUDA generators are simulated, the others real."""

    def __new__(cls, device: Any = 'cpu') -> torch._C.Generator:
        if torch.device(device).type == 'cuda':
            return _CudaGenerator(device)
        return torch._C.Generator(device)


class SimulatedCuda:
    """What :func:`simulated_cuda` recorded and the helpers to use it.

    Attributes:
        mode: The active ``FakeTensorMode``.
        losses: Every tensor a backward pass was started from (in call order).
        reads: Every tensor read through :mod:`diffir_mm.utils.host_reads`.
    """

    def __init__(self, mode: FakeTensorMode, answers: Iterator[Any]) -> None:
        self.mode = mode
        self.losses: List[torch.Tensor] = []
        self.reads: List[torch.Tensor] = []
        self._answers = answers
        self._real_backward = torch.autograd.backward
        self._real_grad = torch.autograd.grad

    # ------------------------------------------------------------------ host reads
    def read_scalar(self, value: torch.Tensor) -> Union[bool, int, float]:
        """Placeholder for :func:`host_reads.read_scalar` of a fake tensor."""
        if not is_fake(value):
            return value.item()
        if value.numel() != 1:
            raise RuntimeError(f'a Tensor with {value.numel()} elements cannot be converted '
                               'to Scalar')
        self.reads.append(value)
        answer = next(self._answers, None)
        if answer is not None:
            return answer
        if value.dtype == torch.bool:
            return True
        return 1.0 if value.is_floating_point() else 1

    def read_array(self, value: torch.Tensor) -> np.ndarray:
        """Placeholder values for :func:`host_reads.read_array` of a fake tensor: fixed
        pseudo-random numbers in ``[0, 1)`` (integers in ``[0, 256)``), not constant, so that
        host statistics (NIQE's covariances, FID's) stay well defined."""
        if not is_fake(value):
            return value.detach().cpu().numpy()
        self.reads.append(value)
        value = value.detach().cpu()  # as the real read: a device tensor is copied first
        dtype = _numpy_dtype(value.dtype)
        rng = np.random.default_rng(len(self.reads))
        if dtype.kind == 'f':
            return rng.random(tuple(value.shape)).astype(dtype)
        return rng.integers(0, 2 if dtype.kind == 'b' else 256, tuple(value.shape)).astype(dtype)

    @contextlib.contextmanager
    def host_copies(self) -> Iterator[None]:
        """Let third-party host copies run (MMagic's metrics: ``t.cpu().numpy()``).

        Inside, ``.numpy()`` of a fake CPU tensor (a value already copied to the host) answers
        placeholders (:meth:`read_array`, recorded in :attr:`reads`); that of a device tensor
        raises as PyTorch does. Elsewhere, reads go through :mod:`host_reads`.
        """
        from unittest import mock

        def numpy(tensor: torch.Tensor, *args: Any, **kwargs: Any) -> np.ndarray:
            if tensor.device.type != 'cpu':
                raise TypeError(f"can't convert {tensor.device} device type tensor to numpy. "
                                'Use Tensor.cpu() to copy the tensor to host memory first.')
            return self.read_array(tensor)

        with mock.patch.object(FakeTensor, 'numpy', numpy):
            yield

    # ------------------------------------------------------------------ autograd
    def backward(self, tensors: Any, *args: Any, **kwargs: Any) -> None:
        """Record the loss(es) of a backward pass through fake tensors instead of running it."""
        tensors = [tensors] if isinstance(tensors, torch.Tensor) else list(tensors)
        if not any(is_fake(t) for t in tensors):
            return self._real_backward(tensors, *args, **kwargs)
        for tensor in tensors:
            if not tensor.requires_grad:
                raise RuntimeError('element 0 of tensors does not require grad and does not '
                                   'have a grad_fn')
        self.losses.extend(tensors)

    def grad(self, outputs: Any, inputs: Any, *args: Any, **kwargs: Any) -> tuple:
        """Zeros shaped like ``inputs`` for fake tensors (gradients are not simulated)."""
        flat_out = [outputs] if isinstance(outputs, torch.Tensor) else list(outputs)
        if not any(is_fake(t) for t in flat_out):
            return self._real_grad(outputs, inputs, *args, **kwargs)
        inputs = [inputs] if isinstance(inputs, torch.Tensor) else list(inputs)
        return tuple(torch.zeros_like(i) for i in inputs)


_NUMPY_DTYPES = {torch.float64: np.float64, torch.float32: np.float32, torch.float16: np.float16,
                 torch.bfloat16: np.float32, torch.int64: np.int64, torch.int32: np.int32,
                 torch.int16: np.int16, torch.int8: np.int8, torch.uint8: np.uint8,
                 torch.bool: np.bool_}


def _numpy_dtype(dtype: torch.dtype) -> np.dtype:
    return np.dtype(_NUMPY_DTYPES[dtype])


def _set_rng_state(original):
    def set_rng_state(new_state: torch.Tensor) -> None:
        if _check_state(new_state, 'torch.set_rng_state'):
            original(new_state)
    return set_rng_state


def _set_cuda_rng_state_all(new_states: Iterable[torch.Tensor]) -> None:
    for state in new_states:
        _check_state(state, 'torch.cuda.set_rng_state_all')


def _load(original):
    def load(f: Any, map_location: Any = None, *args: Any, **kwargs: Any) -> Any:
        """``torch.load`` reads the file for real (host data); a device ``map_location`` (a
        device name, or a function such as mmengine's GPU default) maps it afterwards."""
        with unset_fake_temporarily():
            obj = original(f, *args, map_location='cpu', **kwargs)
        if callable(map_location) or _on_cuda(map_location):
            obj = to_device(obj, 'cuda')
        return obj
    return load


def _swap_tensors(original):
    def swap_tensors(t1: torch.Tensor, t2: torch.Tensor) -> None:
        """``Module.to`` swaps a parameter that is already fake (a module registered twice, as
        LPIPS's ``lin0`` / ``lins.0``) with its copy: on the same device there is nothing to
        swap, the tensors hold no values."""
        if is_fake(t1) and is_fake(t2) and (t1.device, t1.dtype, t1.shape) == \
                (t2.device, t2.dtype, t2.shape):
            return
        original(t1, t2)
    return swap_tensors


def _cuda_rng_state_all() -> List[torch.Tensor]:
    return [torch.zeros(16, dtype=torch.uint8, device='cpu')]


@contextlib.contextmanager
def simulated_cuda(answers: Optional[Iterable[Any]] = None) -> Iterator[SimulatedCuda]:
    """Run the body as if on one CUDA device (see the module docstring).

    Args:
        answers: Values returned, in order, by the first host scalar reads of fake tensors
            (then ``True`` / 1); e.g. ``[False, True]`` makes the first finite check of a
            reduced-precision output fail and the second pass.

    Yields:
        The :class:`SimulatedCuda` record. Build modules before entering (real CPU weights)
        and move them with ``.to('cuda')`` inside; fake tensors must not leave the context.
    """
    from unittest import mock

    from mmengine.device import utils as mmengine_device
    mode = _FakeCudaMode(allow_non_fake_inputs=True)
    record = SimulatedCuda(mode, iter(answers or ()))
    cuda = torch.cuda
    patches = [
        mock.patch.object(cuda, 'is_available', lambda: True),
        mock.patch.object(mmengine_device, 'DEVICE', 'cuda'),
        mock.patch.object(cuda, '_lazy_init', lambda: None),
        mock.patch.object(cuda, 'device_count', lambda: 1),
        mock.patch.object(cuda, 'current_device', lambda: 0),
        mock.patch.object(cuda, 'is_initialized', lambda: True),
        mock.patch.object(cuda, 'is_bf16_supported', lambda *a, **k: True),
        mock.patch.object(cuda, 'get_device_capability', lambda *a, **k: CAPABILITY),
        mock.patch.object(cuda, 'get_device_name', lambda *a, **k: DEVICE_NAME),
        mock.patch.object(cuda, 'synchronize', lambda *a, **k: None),
        mock.patch.object(cuda, 'empty_cache', lambda: None),
        mock.patch.object(cuda, 'get_rng_state_all', _cuda_rng_state_all),
        mock.patch.object(cuda, 'set_rng_state_all', _set_cuda_rng_state_all),
        mock.patch.object(torch, 'set_rng_state', _set_rng_state(torch.set_rng_state)),
        mock.patch.object(torch, 'Generator', _Generator),
        mock.patch.object(torch, 'load', _load(torch.load)),
        mock.patch.object(torch.utils, 'swap_tensors', _swap_tensors(torch.utils.swap_tensors)),
        mock.patch.object(torch.autograd, 'backward', record.backward),
        mock.patch.object(torch.autograd, 'grad', record.grad),
        mock.patch.object(host_reads, 'read_scalar', record.read_scalar),
        mock.patch.object(host_reads, 'read_array', record.read_array),
    ]
    with contextlib.ExitStack() as stack:
        for patch in patches:
            stack.enter_context(patch)
        stack.enter_context(warnings.catch_warnings())
        # deep copies of fake tensors (metainfo copies of mmengine's data samples) ask for it
        warnings.filterwarnings('ignore', message='Accessing the data pointer of FakeTensor')
        stack.enter_context(mode)
        yield record


def to_device(value: Any, device: Union[str, torch.device] = 'cuda') -> Any:
    """``value`` with every tensor moved to ``device`` (nested dicts, lists, tuples), as
    ``torch.load(map_location=device)`` returns a checkpoint."""
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, dict):
        return type(value)((k, to_device(v, device)) for k, v in value.items())
    if isinstance(value, (list, tuple)) and not hasattr(value, '_fields'):
        return type(value)(to_device(v, device) for v in value)
    return value

