"""What a spandrel host's call runs: our restorer, tiled internally under one shared prior.

spandrel calls ``call_fn(model, image)`` (``call_fn(model, image, mask)`` for inpainting) with
one ``(1, 3, H, W)`` image in ``[0, 1]``, in the model's dtype and on its device. Both calls
here are :class:`~diffir_mm.inference.Restorer` -- the engine of ``diffir-restore`` -- with

* ``tile=``:data:`TILE`: an image whose padded sides fit in one window is the untiled official
  forward; a larger one is restored in ``TILE``-px windows (``DEFAULT_TILE_OVERLAP`` px overlap)
  that share **one** prior estimated from the whole image
  (:func:`~diffir_mm.inference.tiling.restore_tiled`). DiffIR's prior is global, so a host must
  not cut the image itself: the descriptor says ``ModelTiling.INTERNAL``;
* ``seed=``:data:`SEED`: the diffusion start vector is drawn from a CPU generator seeded with
  it, so the same image gives the same output on every call and device;
* the model's own dtype (fp32, or what the host cast it to with ``.half()`` / ``.bfloat16()``):
  no autocast on top (``precision='fp32'`` of the restorer means exactly that);
* inpainting: the official predictor's rules (holes where ``mask > 0``, symmetric padding to 8,
  known pixels kept), which is why the descriptors ask spandrel for no padding.

So ``descriptor(image)`` equals ``diffir-restore --tile 512 --seed 0 --precision fp32`` on the
same image, tiled or not (``tests/test_spandrel/test_spandrel.py``).
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from diffir_mm.inference.restorer import Restorer
from diffir_mm.inference.tiling import DEFAULT_TILE_OVERLAP

__all__ = ['TILE', 'SEED', 'call_restorer', 'restore_call', 'inpaint_call']

#: Window side (input pixels) of the internal tiling; images up to it run untiled.
TILE = 512
#: Seed of the diffusion start vector of every call.
SEED = 0


def call_restorer(model: nn.Module, device: torch.device) -> Restorer:
    """The restorer a call runs: ``diffir-restore --tile TILE --seed SEED --precision fp32``."""
    return Restorer(model, device=device, precision='fp32', tile=TILE,
                    tile_overlap=DEFAULT_TILE_OVERLAP, seed=SEED, compile='off')


def _call(model: nn.Module, image: torch.Tensor, mask: Optional[torch.Tensor]) -> torch.Tensor:
    out = call_restorer(model, image.device).restore_tensor(image, mask=mask)
    out = out.to(device=image.device, dtype=image.dtype)
    if out.is_inference() and not torch.is_inference_mode_enabled():
        out = out.clone()  # spandrel clamps in place; the masked call is not in inference mode
    return out


def restore_call(model: nn.Module, image: torch.Tensor) -> torch.Tensor:
    """``call_fn`` of the restoration and SR descriptors."""
    return _call(model, image, None)


def inpaint_call(model: nn.Module, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``call_fn`` of the inpainting descriptors (``mask``: 1 = hole)."""
    return _call(model, image, mask)
