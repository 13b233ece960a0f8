"""DiffIR networks and the IPR diffusion, in plain PyTorch (no mmagic / mmcv / mmengine)."""
from .cpen import CPEN
from .diffir_net import DiffIRS1Net, DiffIRS2Net, pad_to_multiple
from .dirformer import (IPR_DIM, DIRformer, DynamicAttention, DynamicFeedForward,
                        DynamicTransformerBlock)
from .ipr_diffusion import IPRDenoiser, IPRDiffusion, sqrt_linear_schedule
from .norm import ChannelLayerNorm, LayerNorm2d
from .official import (CheckpointMismatchError, detect_layout, extract_network_state,
                       load_official, official_to_ours, ours_to_official, read_checkpoint)
from .presets import DIFFUSION_DEFAULTS, PRESETS, build_diffir, preset_kwargs, preset_name

__all__ = [
    'CPEN', 'DiffIRS1Net', 'DiffIRS2Net', 'pad_to_multiple', 'IPR_DIM', 'DIRformer',
    'DynamicAttention', 'DynamicFeedForward', 'DynamicTransformerBlock', 'IPRDenoiser',
    'IPRDiffusion', 'sqrt_linear_schedule', 'ChannelLayerNorm', 'LayerNorm2d',
    'CheckpointMismatchError', 'detect_layout', 'extract_network_state', 'load_official',
    'official_to_ours', 'ours_to_official', 'read_checkpoint', 'DIFFUSION_DEFAULTS', 'PRESETS',
    'build_diffir', 'preset_kwargs', 'preset_name'
]
