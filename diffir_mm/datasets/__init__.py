"""Datasets side of diffir_mm.

MMagic's ``BasicImageDataset`` covers every DiffIR dataset (paired folders,
GT-only folders, LR-only folders), so only transforms are added here
(:mod:`diffir_mm.datasets.transforms`). Importing this package registers them
into ``mmagic.registry.TRANSFORMS``.
"""
from .transforms import *  # noqa: F401,F403
from .transforms import __all__ as _transforms_all

__all__ = list(_transforms_all)
