"""Optional ``torch.compile`` of the DIRformer's transformer blocks for inference.

What is compiled: every :class:`~diffir_mm.archs.DynamicTransformerBlock` on its own (PyTorch's
"regional compilation"). Blocks of the same width and input size share one compiled graph, so a
DiffIR network compiles one graph per level and size (five for deblurring at one image size)
instead of one graph of all ~40 blocks; the convolutions between the blocks stay eager. Inputs
are compiled for their exact size (``dynamic=False``): a new image or tile size compiles again,
which costs tens of seconds. Compiling therefore pays for many images (or tiles) of one size and
not for a folder of photos of different sizes; once torch's recompile limit for a function is
reached, further sizes simply run eager.

Whether ``compile='auto'`` compiles is :data:`AUTO_COMPILE` per device type: nothing yet, until
the GPU table (``bench/gpu_suite.py``) shows the gain; switching CUDA on is one line there.
"""
from __future__ import annotations

from typing import Any, Dict, Union

import torch
from torch import nn

from diffir_mm.archs import DynamicTransformerBlock

__all__ = ['AUTO_COMPILE', 'COMPILE_CHOICES', 'resolve_compile', 'compile_blocks']

#: Device types on which ``compile='auto'`` compiles (absent: no).
AUTO_COMPILE: Dict[str, bool] = {}
#: Accepted string values of the ``compile`` option (besides True / False).
COMPILE_CHOICES = ('auto', 'on', 'off')


def resolve_compile(compile: Union[bool, str, None], device: Union[str, torch.device]) -> bool:
    """Whether to compile on ``device``: ``True``/``'on'``, ``False``/``'off'``/None, or
    ``'auto'`` (:data:`AUTO_COMPILE`)."""
    if isinstance(compile, bool) or compile is None:
        return bool(compile)
    if compile not in COMPILE_CHOICES:
        raise ValueError(f'compile must be one of {COMPILE_CHOICES} or a bool, got {compile!r}')
    if compile == 'auto':
        return AUTO_COMPILE.get(torch.device(device).type, False)
    return compile == 'on'


def compile_blocks(network: nn.Module, **options: Any) -> int:
    """Compile every transformer block of ``network`` in place; returns how many.

    Args:
        network: A DiffIR network (or any module holding DIRformer blocks).
        **options: More ``torch.compile`` options (``backend``, ``mode``...).

    Raises:
        ValueError: ``network`` has no DIRformer blocks (an ONNX Runtime network, say).
    """
    blocks = [m for m in network.modules() if isinstance(m, DynamicTransformerBlock)]
    if not blocks:
        raise ValueError(f'{type(network).__name__} has no DIRformer blocks to compile')
    for block in blocks:
        block.compile(**dict(dict(dynamic=False), **options))
    return len(blocks)
