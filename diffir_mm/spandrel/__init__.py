"""DiffIR for spandrel hosts (ComfyUI, chaiNNer, InvokeAI...): ``pip install diffir-mm[spandrel]``.

::

    import spandrel, diffir_mm.spandrel
    diffir_mm.spandrel.install()
    model = spandrel.ModelLoader().load_from_file('DiffIRS2-GAN.pth')  # or model.safetensors

:func:`install` adds :class:`~.architecture.DiffIRArch` to spandrel's ``MAIN_REGISTRY`` (or a
registry passed in), as ``spandrel_extra_arches.install()`` adds its own; every released DiffIR
file and ours then loads (BasicSR ``.pth``, LaMa ``.ckpt``, our converted ``.pth`` and training
checkpoints, ``.safetensors``). No spandrel architecture claims DiffIR files, nor DiffIR theirs,
so it needs no ``before=`` ordering (``tests/test_spandrel``).

Reading: ``spandrel.ModelLoader.load_from_file`` opens ``.pth`` / ``.ckpt`` itself, with
``torch.load(..., pickle_module=RestrictedUnpickle)``: spandrel's own unpickler, which allows
``collections.OrderedDict``, ``torch._utils._rebuild_tensor_v2`` and the float / half / bfloat16
/ int / long / double storages, and nothing else (``.pt`` files are first tried as TorchScript;
``.safetensors`` go through ``safetensors.torch.load_file``). So a pickle that calls anything is
refused there too, and so is any file holding other objects (NumPy arrays; our training
checkpoints store their ``message_hub`` as a tensor of bytes, :mod:`diffir_mm.checkpoint.packing`,
so they open). :func:`load_from_file` reads through :mod:`diffir_mm.checkpoint` instead
(``weights_only=True``, ``.safetensors`` without pickle, model folders), then hands the weights to
the same architecture -- or, for another model, to the registry.

Imports torch, spandrel and diffir_mm's torch-only packages; nothing of mmagic / mmcv / mmengine.
"""
from __future__ import annotations

import os
from typing import List, Optional, Union

import torch

try:
    import spandrel
except ImportError as err:  # pragma: no cover - the optional dependency is missing
    raise ImportError("diffir_mm.spandrel needs spandrel: pip install 'diffir-mm[spandrel]'") \
        from err

from diffir_mm.checkpoint import CheckpointMismatchError, holds_diffir, read_checkpoint

from .architecture import ARCH_ID, SUPPORTS_BFLOAT16, SUPPORTS_HALF, DiffIRArch
from .calls import SEED, TILE, inpaint_call, restore_call

__all__ = ['ARCH_ID', 'SUPPORTS_HALF', 'SUPPORTS_BFLOAT16', 'TILE', 'SEED', 'DiffIRArch',
           'install', 'load_from_file', 'restore_call', 'inpaint_call']


def install(registry: Optional[spandrel.ArchRegistry] = None, *,
            ignore_duplicates: bool = True) -> List[spandrel.ArchSupport]:
    """Register DiffIR in spandrel's ``MAIN_REGISTRY`` (or ``registry``).

    Args:
        registry: The registry; default ``spandrel.MAIN_REGISTRY``, which every
            ``spandrel.ModelLoader()`` uses.
        ignore_duplicates: Installing twice is a no-op (False: spandrel's
            ``DuplicateArchitectureError``, as ``spandrel_extra_arches.install()`` raises).

    Returns:
        The ``ArchSupport`` entries added (empty when DiffIR was already there).
    """
    registry = spandrel.MAIN_REGISTRY if registry is None else registry
    return registry.add(spandrel.ArchSupport.from_architecture(DiffIRArch()),
                        ignore_duplicates=ignore_duplicates)


def load_from_file(path: Union[str, os.PathLike],
                   device: Union[str, torch.device, None] = None,
                   registry: Optional[spandrel.ArchRegistry] = None) -> spandrel.ModelDescriptor:
    """``spandrel.ModelLoader(device).load_from_file(path)``, read safely and folder-aware.

    The file is read by :func:`diffir_mm.checkpoint.read_checkpoint` (``weights_only=True``;
    ``.safetensors`` without pickle; a model folder of ``tools/convert_official_ckpt.py --format
    safetensors``); DiffIR weights go to :class:`~.architecture.DiffIRArch` (with what the file
    says checked against them), anything else to ``registry`` (default ``MAIN_REGISTRY``).

    Raises:
        FileNotFoundError: No such file or folder.
        spandrel.UnsupportedModelError: Unreadable, unsafe, stage 1, inconsistent or not a model
            the registry knows (one line).
    """
    try:
        ckpt = read_checkpoint(path)
        if holds_diffir(spandrel.canonicalize_state_dict(dict(ckpt)).keys()):
            descriptor = DiffIRArch().load(dict(ckpt))
        else:
            descriptor = (spandrel.MAIN_REGISTRY if registry is None else registry).load(
                dict(ckpt))
    except CheckpointMismatchError as err:
        raise spandrel.UnsupportedModelError(str(err)) from None
    return descriptor.to(torch.device(device) if device is not None else torch.device('cpu'))
