"""Inference API: DiffIR in MMagic's ``MMagicInferencer`` (model name ``'diffir'``)."""
from .inferencer import (DIFFIR_MODEL_NAME, diffir_settings, prepare_checkpoint,
                         register_mmagic_inferencer)

__all__ = ['DIFFIR_MODEL_NAME', 'diffir_settings', 'prepare_checkpoint',
           'register_mmagic_inferencer']
