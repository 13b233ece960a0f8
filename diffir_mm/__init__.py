"""diffir-mm: DiffIR (ICCV 2023) image restoration as an OpenMMLab MMagic plugin.

``import diffir_mm`` registers every diffir_mm class into MMagic's registries (``MODELS``,
``DATASETS``, ``TRANSFORMS``, ``METRICS``, ``HOOKS``), so configs only need
``custom_imports = dict(imports=['diffir_mm'], allow_failed_imports=False)``.

The networks in :mod:`diffir_mm.archs` are plain PyTorch. Importing only them
(``import diffir_mm.archs``, e.g. on a machine without mmcv) does not import mmagic, mmcv or
mmengine; registration is then deferred until mmagic's registry is first used.
"""
from ._registration import MM_LAYER_AVAILABLE, register_all_modules, register_on_import
from .archs import load_official

__version__ = '0.1.0'
__all__ = ['load_official', 'register_all_modules', 'MM_LAYER_AVAILABLE', '__version__']

register_on_import()
