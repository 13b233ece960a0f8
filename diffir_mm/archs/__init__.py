"""DiffIR networks and the IPR diffusion, in plain PyTorch (no mmagic / mmcv / mmengine).

The checkpoint names (``load_official``, ``read_network``, ``ours_to_official``, ...) live in
:mod:`diffir_mm.checkpoint` and are re-exported here for existing callers.
"""
from diffir_mm.checkpoint import (CheckpointMismatchError, Layout, NetworkCheckpoint,
                                  detect_layout, infer_arch_kwargs, load_network, load_official,
                                  official_to_ours, ours_to_official, read_checkpoint,
                                  read_components, read_network, require, write_checkpoint)

from .cpen import CPEN
from .diffir_net import DiffIRS1Net, DiffIRS2Net, S2TrainOutput, pad_to_multiple
from .dirformer import (IPR_DIM, DIRformer, DynamicAttention, DynamicFeedForward,
                        DynamicTransformerBlock, reference_path)
from .ipr_diffusion import IPRDenoiser, IPRDiffusion, sqrt_linear_schedule
from .norm import ChannelLayerNorm, LayerNorm2d
from .presets import (DIFFUSION_DEFAULTS, PRESETS, SR_SCALES, TASKS, build_diffir, preset_kwargs,
                      preset_name)

__all__ = [
    'CPEN', 'DiffIRS1Net', 'DiffIRS2Net', 'S2TrainOutput', 'pad_to_multiple', 'IPR_DIM',
    'DIRformer', 'DynamicAttention', 'DynamicFeedForward', 'DynamicTransformerBlock',
    'reference_path', 'IPRDenoiser', 'IPRDiffusion', 'sqrt_linear_schedule', 'ChannelLayerNorm',
    'LayerNorm2d',
    'CheckpointMismatchError', 'Layout', 'NetworkCheckpoint', 'detect_layout',
    'infer_arch_kwargs', 'load_network', 'load_official', 'official_to_ours', 'ours_to_official',
    'read_checkpoint', 'read_components', 'read_network', 'require', 'write_checkpoint',
    'DIFFUSION_DEFAULTS', 'PRESETS', 'SR_SCALES', 'TASKS', 'build_diffir', 'preset_kwargs',
    'preset_name'
]
