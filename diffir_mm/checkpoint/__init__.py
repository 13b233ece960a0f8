"""DiffIR checkpoints: every file read, checked and written through one package.

Plain PyTorch (torch, numpy, safetensors): no mmagic / mmcv / mmengine at import; mmengine is
imported only to rebuild its own objects for mmengine's loader (``mmengine_objects=True``).
One module per concern, one entry per job:

* :mod:`.safe_load` -- opening files (the only ``torch.load``, always ``weights_only=True``;
  ``.safetensors`` without unpickling): :func:`load_file`, :func:`read_checkpoint`,
  :func:`load_state_dict_file` (feature networks of losses and metrics);
* :mod:`.allow_list` -- what the safe unpickler may create for mmengine training checkpoints
  (``message_hub``), by name, without importing mmengine;
* :mod:`.packing` -- training checkpoints that tensor-only readers (spandrel, ComfyUI) open:
  :func:`pack_entries` stores the entries that are not plain data as tensors of their bytes;
* :mod:`.folder` -- the model folder (``model.safetensors`` + ``config.json`` + card): names,
  :func:`is_model_folder`, :func:`file_sha256`; :mod:`.card` -- its generated model card;
* :mod:`.formats` -- BasicSR / LaMa / ours / bare state dicts -> networks in our naming, what a
  file says checked against its weights: :func:`read_components`, :func:`read_network`,
  :func:`discriminator_state`, :func:`holds_diffir` (keys only);
* :mod:`.naming` -- official keys <-> ours: :func:`official_to_ours`, :func:`ours_to_official`;
* :mod:`.layouts` -- :class:`Layout` (stage, task, scale, width) and :class:`NetworkCheckpoint`;
* :mod:`.infer` -- :func:`infer_arch_kwargs`, the constructor arguments from keys and shapes;
* :mod:`.fit` -- :func:`require` (the one fit check), :func:`load_network`,
  :func:`load_state_strict`, :func:`load_official`;
* :mod:`.writing` -- :func:`write_checkpoint`, :func:`save_file` (atomic ``.pth`` /
  ``.safetensors``), :func:`mmengine_checkpoint`, :func:`write_model_folder`,
  :func:`write_serialized` (the one atomic write of every checkpoint file, training checkpoints
  included).

Every failure is one line: :class:`FileNotFoundError` or :class:`CheckpointMismatchError`.
"""
from .allow_list import MMENGINE_CHECKPOINT_GLOBALS, HistoryBufferState
from .errors import CheckpointMismatchError
from .fit import load_network, load_official, load_state_strict, require
from .folder import CARD_FILE, CONFIG_FILE, MODEL_FILE, file_sha256, is_model_folder
from .formats import discriminator_state, holds_diffir, read_components, read_network
from .infer import infer_arch_kwargs
from .layouts import Layout, NetworkCheckpoint, detect_layout
from .naming import official_to_ours, ours_to_official
from .packing import pack_entries
from .safe_load import load_file, load_state_dict_file, read_checkpoint
from .writing import (mmengine_checkpoint, save_file, write_checkpoint, write_model_folder,
                      write_serialized)

__all__ = [
    'CheckpointMismatchError', 'Layout', 'NetworkCheckpoint', 'HistoryBufferState',
    'MMENGINE_CHECKPOINT_GLOBALS', 'load_file', 'read_checkpoint', 'load_state_dict_file',
    'read_components', 'read_network', 'discriminator_state', 'detect_layout',
    'official_to_ours', 'ours_to_official', 'infer_arch_kwargs', 'require', 'load_state_strict',
    'load_network', 'load_official', 'mmengine_checkpoint', 'save_file', 'write_checkpoint',
    'write_model_folder', 'holds_diffir', 'is_model_folder', 'file_sha256', 'MODEL_FILE',
    'CONFIG_FILE', 'CARD_FILE', 'write_serialized', 'pack_entries',
]
