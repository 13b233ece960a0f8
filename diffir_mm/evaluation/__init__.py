"""Evaluation: image-quality metrics for mmagic evaluators.

Importing this package registers ``LPIPS``, ``DISTS``, ``NoRefNIQE`` and
``ImageCount`` into ``mmagic.registry.METRICS``.
"""
from .metrics import (DISTS, LPIPS, BasePerceptualMetric, ImageCount,
                      NoRefNIQE)

__all__ = ['BasePerceptualMetric', 'LPIPS', 'DISTS', 'NoRefNIQE', 'ImageCount']
