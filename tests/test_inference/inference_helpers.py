"""Helpers of the inference tests (tiny random networks, checkpoint layouts)."""
import os

import cv2
import torch

import diffir_mm.inference  # noqa: F401  (torch-only import first: no mmagic registration)
from diffir_mm.archs import build_diffir, ours_to_official

TINY = dict(dim=8, num_blocks=[1, 1, 1, 1], n_encoder_res=1)


def tiny_net(preset: str, seed: int = 0):
    """A tiny random stage-2 network of ``preset`` in eval mode."""
    torch.manual_seed(seed)
    refine = 0 if preset.startswith('inpaint') else 1
    return build_diffir(preset, stage=2, num_refinement_blocks=refine, **TINY).eval()


def official_checkpoint(net) -> dict:
    """The net in the released BasicSR layout (``params_ema``, with the diffusion duplicates)."""
    return {'params_ema': ours_to_official(net.state_dict(), with_duplicates=True, net=net)}


def mmengine_checkpoint(net, ema_net=None) -> dict:
    """The net as one of our mmengine checkpoints (``generator.*`` [+ ``generator_ema.*``])."""
    sd = {f'generator.{k}': v for k, v in net.state_dict().items()}
    if ema_net is not None:
        sd.update({f'generator_ema.{k}': v for k, v in ema_net.state_dict().items()})
    return {'state_dict': sd, 'meta': {'iter': 1}}


def write(path, array) -> str:
    """cv2.imwrite that fails loudly."""
    path = os.fspath(path)
    assert cv2.imwrite(path, array), path
    return path


def file_bytes(path) -> bytes:
    with open(path, 'rb') as fh:
        return fh.read()
