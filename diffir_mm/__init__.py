"""diffir-mm: DiffIR (ICCV 2023) image restoration as an OpenMMLab MMagic plugin.

``import diffir_mm`` (and ``import diffir_mm.archs``) is plain PyTorch: it imports no mmagic,
mmcv or mmengine module and registers nothing. Registration into MMagic's registries is explicit,
as in MMagic itself: configs name the registration module,
``custom_imports = dict(imports=['diffir_mm.registration'], allow_failed_imports=False)``, and
scripts call :func:`diffir_mm.registration.register_all_modules` (or ``import
diffir_mm.registration``).
"""
from .checkpoint import load_official

__version__ = '0.1.0'
__all__ = ['load_official', '__version__']
