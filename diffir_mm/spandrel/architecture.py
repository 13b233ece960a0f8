"""DiffIR as a spandrel ``Architecture``: detection from keys, loading through our checkpoint code.

* :meth:`DiffIRArch.detect` -- :func:`~diffir_mm.checkpoint.holds_diffir`: a DIRformer (its patch
  embedding and first IPR-modulated attention) *and* its prior network (CPEN), in the official
  naming (``G.*`` + ``E.*`` / ``condition.*``) or ours (``dirformer.*`` + ``cpen.*``), bare or
  behind ``generator.`` / ``generator_ema.`` / ``teacher.`` / ``generatorS1.`` / ``module.`` --
  every layout spandrel hands over after unwrapping BasicSR ``params_ema`` / ``params`` and
  LaMa / mmengine ``state_dict``. Keys only.
* :meth:`DiffIRArch.load` -- :func:`~diffir_mm.checkpoint.read_network` (EMA weights preferred;
  official duplicates and schedule checked; what the file says checked against its weights) and
  :func:`~diffir_mm.inference.restorer.network_from_checkpoint` (the architecture read from keys
  and shapes, loaded strictly): the network ``load_official`` and ``diffir-restore`` build.
  Stage-1 networks (they need the ground truth) and files that do not fit are refused with
  spandrel's :class:`~spandrel.UnsupportedModelError` and a one-line reason.

The descriptor: purpose ``Restoration`` (deblurring), ``SR`` with the scale (SR x4 / x2 / x1)
or ``Inpainting`` (a ``MaskedImageModelDescriptor``); 3 channels in and out;
``tiling=ModelTiling.INTERNAL`` with the call of :mod:`.calls`; no ``size_requirements``
(the call pads as the official code does); ``supports_half`` / ``supports_bfloat16`` as measured
(:data:`SUPPORTS_HALF`, :data:`SUPPORTS_BFLOAT16`).
"""
from __future__ import annotations

from typing import Any, Dict, List, Union

from spandrel import (Architecture, ImageModelDescriptor, MaskedImageModelDescriptor,
                      ModelTiling, SizeRequirements, StateDict, UnsupportedModelError)

from diffir_mm.archs import DiffIRS2Net
from diffir_mm.checkpoint import (CheckpointMismatchError, NetworkCheckpoint, holds_diffir,
                                  read_network)
from diffir_mm.checkpoint.formats import is_big_inpainting
from diffir_mm.inference.restorer import network_from_checkpoint

from .calls import inpaint_call, restore_call

__all__ = ['ARCH_ID', 'SUPPORTS_HALF', 'SUPPORTS_BFLOAT16', 'DiffIRArch']

#: spandrel architecture id.
ARCH_ID = 'DiffIR'
#: Measured (``tests/test_spandrel/test_spandrel.py``, full-size released architectures): the
#: network cast to fp16 gives finite output within ``HALF_REL_TOL`` of fp32 -- its layer norms
#: and attention scores are computed in fp32 whatever the input dtype.
SUPPORTS_HALF = True
#: Measured likewise for bf16 (within ``BF16_REL_TOL``).
SUPPORTS_BFLOAT16 = True

Descriptor = Union[ImageModelDescriptor[DiffIRS2Net], MaskedImageModelDescriptor[DiffIRS2Net]]


def _stage1_message(ckpt: NetworkCheckpoint) -> str:
    return (f'{ckpt.source} holds a {ckpt.layout.describe()}: DiffIR stage 1 takes its prior '
            'from the ground truth, so it cannot restore an image on its own; load the stage-2 '
            'file of the same release (e.g. DiffIRS2*.pth, or the inpainting last.ckpt of a '
            'DiffIRS2 run)')


def _tags(kwargs: Dict[str, Any]) -> List[str]:
    tags = [f'{kwargs["dim"]}dim', f'{sum(kwargs["num_blocks"])}blocks']
    if is_big_inpainting(kwargs):
        tags.append('big')
    return tags


class DiffIRArch(Architecture[DiffIRS2Net]):
    """DiffIR stage-2 networks of every release (deblurring, SR x4/x2/x1, inpainting, big)."""

    def __init__(self) -> None:
        super().__init__(id=ARCH_ID, name='DiffIR', detect=lambda sd: holds_diffir(sd.keys()))

    def load(self, state_dict: StateDict) -> Descriptor:
        """The descriptor of a detected state dict.

        Raises:
            UnsupportedModelError: A stage-1 network, a network other than RGB, or weights that
                do not fit (one line).
        """
        try:
            ckpt = read_network(state_dict)
            if ckpt.layout.stage == 1:
                raise UnsupportedModelError(_stage1_message(ckpt))
            kwargs = ckpt.arch_kwargs()
            if (kwargs['inp_channels'], kwargs['out_channels']) != (
                    4 if kwargs['task'] == 'inpaint' else 3, 3):
                raise UnsupportedModelError(
                    f'{ckpt.source}: a DiffIR model of {kwargs["inp_channels"]} input and '
                    f'{kwargs["out_channels"]} output channels; only RGB models are served')
            net = network_from_checkpoint(ckpt)
        except CheckpointMismatchError as err:
            raise UnsupportedModelError(str(err)) from None
        common = dict(architecture=self, tags=_tags(kwargs), supports_half=SUPPORTS_HALF,
                      supports_bfloat16=SUPPORTS_BFLOAT16, input_channels=3, output_channels=3,
                      size_requirements=SizeRequirements(), tiling=ModelTiling.INTERNAL)
        state = net.state_dict()
        if net.task == 'inpaint':
            return MaskedImageModelDescriptor(net, state, purpose='Inpainting',
                                              call_fn=inpaint_call, **common)
        return ImageModelDescriptor(net, state, purpose='SR' if net.task == 'sr' else
                                    'Restoration', scale=net.scale, call_fn=restore_call,
                                    **common)
