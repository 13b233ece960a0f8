"""Evaluation: image-quality metrics for mmagic evaluators.

Importing this package registers ``LPIPS``, ``DISTS`` and ``NoRefNIQE`` into
``mmagic.registry.METRICS``.
"""
from .metrics import DISTS, LPIPS, BasePerceptualMetric, NoRefNIQE

__all__ = ['BasePerceptualMetric', 'LPIPS', 'DISTS', 'NoRefNIQE']
