"""The network inside a distributed wrapper: one rule for every caller.

``DistributedDataParallel`` and mmengine's wrappers (``MMDistributedDataParallel``,
``MMSeparateDistributedDataParallel``'s children) hold the network as ``.module``; editors, hooks
and the random-state hook need the network itself.
"""
from __future__ import annotations

from typing import Any

from torch import nn

__all__ = ['unwrap_model']


def unwrap_model(model: Any) -> Any:
    """``model.module`` (repeatedly) while it is a wrapped network; ``model`` otherwise."""
    while isinstance(getattr(model, 'module', None), nn.Module):
        model = model.module
    return model
