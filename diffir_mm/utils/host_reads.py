"""Reading device values on the host: the places where diffir_mm waits for the device.

A Python value computed from a tensor on a GPU (``.item()``, ``bool(t)``, ``.numpy()``) makes the
host wait until the device has finished everything queued before it. diffir_mm reads such values
only through the two functions here -- the finite check of reduced-precision outputs, the metric
values, the random states restored on resume -- so that they are easy to find and so that the
device audit (:mod:`diffir_mm.utils.fake_cuda`), whose simulated tensors hold no values, can
answer them. Anything else that reads a device value fails the audit.
"""
from __future__ import annotations

from typing import Union

import numpy as np
import torch

__all__ = ['read_scalar', 'read_array']


def read_scalar(value: torch.Tensor) -> Union[bool, int, float]:
    """The Python number (or bool) held by a one-element tensor."""
    return value.item()


def read_array(value: torch.Tensor) -> np.ndarray:
    """The NumPy copy of a tensor (moved to the CPU first when it lives on a device)."""
    return value.detach().cpu().numpy()
