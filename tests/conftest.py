"""Shared pytest fixtures.

Plain helpers (image generation, subprocess runner, free port, tiny config,
reference fixtures, tiny networks) live in ``tests/helpers.py`` (``from helpers
import X``: pytest.ini puts ``tests/`` on the path); this file only wires them
into fixtures.
"""
import os

import pytest
from helpers import make_paired_images

# albumentations (imported by mmagic.datasets) checks PyPI for a newer
# version on import; tests must not touch the network.
os.environ.setdefault('NO_ALBUMENTATIONS_UPDATE', '1')


@pytest.fixture(scope='session')
def tiny_pairs(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Four 32x32 GT/blurred-LQ PNG pairs in ``<root>/{gt,lq}``.

    Args:
        tmp_path_factory (pytest.TempPathFactory): pytest's factory.

    Returns:
        str: The data root.
    """
    root = tmp_path_factory.mktemp('tiny_pairs')
    make_paired_images(str(root), num=4, size=32, mode='blur')
    return str(root)


@pytest.fixture(scope='session')
def tiny_sr_pairs(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Four 32x32 GT / 16x16 bicubic-LQ PNG pairs in ``<root>/{gt,lq}``.

    Args:
        tmp_path_factory (pytest.TempPathFactory): pytest's factory.

    Returns:
        str: The data root.
    """
    root = tmp_path_factory.mktemp('tiny_sr_pairs')
    make_paired_images(str(root), num=4, size=32, mode='downscale', scale=2)
    return str(root)
