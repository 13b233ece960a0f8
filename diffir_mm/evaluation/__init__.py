"""Evaluation: image-quality metrics for mmagic evaluators.

Importing this package registers ``LPIPS``, ``DISTS``, ``NoRefNIQE``, ``ImageCount``,
``MatlabSSIM``, ``PairedFID`` and ``ColourError`` into ``mmagic.registry.METRICS``.
"""
from .metrics import (DISTS, LPIPS, BasePerceptualMetric, ColourError, ImageCount,
                      MatlabSSIM, NoRefNIQE)

__all__ = ['BasePerceptualMetric', 'LPIPS', 'DISTS', 'NoRefNIQE', 'ImageCount',
           'MatlabSSIM', 'ColourError']
