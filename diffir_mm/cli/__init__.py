"""Command-line entry points of diffir-mm (``diffir-restore``: :mod:`diffir_mm.cli.restore`).

They use only the torch-only packages (:mod:`diffir_mm.archs`, :mod:`diffir_mm.inference`);
``--config`` additionally needs ``mmengine`` (imported on demand).
"""
