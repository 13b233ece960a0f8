"""Helpers shared by the torch-only network tests (``diffir_mm.archs``).

The reference data live outside the repository, in ``../shared/fixtures`` (see its README):
``official/official_<variant>.pt`` are outputs of the authors' code on tiny random networks and
``official_keys/keys_<task>_S<stage>.json`` are the full-size key layouts of every release.
Tests that need them FAIL when the folder is absent (CI must not pass without them); set
``DIFFIR_ALLOW_MISSING_FIXTURES=1`` to skip them instead on a machine that cannot have them.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Dict

import pytest
import torch

#: ``<repo>/../shared/fixtures``.
FIXTURES = Path(__file__).resolve().parents[2].parent / 'shared' / 'fixtures'
OFFICIAL_DIR = FIXTURES / 'official'
KEYS_DIR = FIXTURES / 'official_keys'

#: fixture variant -> (task, scale) of ``load_official``.
OFFICIAL_VARIANTS: Dict[str, tuple] = {
    'sr_x4': ('sr', 4),
    'deblur': ('deblur', 1),
    'inpaint': ('inpaint', 1),
}

#: Float32 tolerance against the float64 references of the official code: the README's claim.
#: Measured: at most 8.4e-7 over every fixture output (the official code itself run in float32:
#: up to 4.8e-7, ``official_float32_max_abs_dev``).
TOL = 1e-6


def missing_fixture(path: Path) -> None:
    """Fail (or, with ``DIFFIR_ALLOW_MISSING_FIXTURES=1``, skip) a test whose fixture is absent."""
    message = (f'reference fixture {path} is missing: the parity tests need ../shared/fixtures '
               '(set DIFFIR_ALLOW_MISSING_FIXTURES=1 to skip them instead)')
    if os.environ.get('DIFFIR_ALLOW_MISSING_FIXTURES') == '1':
        pytest.skip(message)
    pytest.fail(message)


def max_abs_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    """Largest absolute element difference, computed in float64."""
    assert a.shape == b.shape, f'shape {tuple(a.shape)} != {tuple(b.shape)}'
    return (a.double() - b.double()).abs().max().item()


def load_official_fixture(variant: str) -> Dict[str, Any]:
    """Load ``official_<variant>.pt`` (:func:`missing_fixture` if it is not available)."""
    path = OFFICIAL_DIR / f'official_{variant}.pt'
    if not path.is_file():
        missing_fixture(path)
    return torch.load(path, map_location='cpu', weights_only=True)


def load_keys_fixture(name: str, stage: int) -> Dict[str, list]:
    """``{key: shape}`` of ``keys_<name>_S<stage>.json`` (:func:`missing_fixture` if absent)."""
    path = KEYS_DIR / f'keys_{name}_S{stage}.json'
    if not path.is_file():
        missing_fixture(path)
    with open(path) as f:
        data = json.load(f)
    assert data['stage'] in (stage, f'S{stage}', str(stage)), data['stage']
    return {k: list(v) for k, v in data['keys'].items()}


def arch_kwargs(data: Dict[str, Any]) -> Dict[str, Any]:
    """The fixture's official constructor arguments, without ``scale`` (given separately)."""
    return {k: v for k, v in data['official_kwargs'].items() if k != 'scale'}


def net_input(data: Dict[str, Any]) -> torch.Tensor:
    """The network input of a fixture (inpainting: ``cat(img * (1 - mask), mask)``)."""
    inputs = data['inputs']
    return inputs['net_input'] if 'net_input' in inputs else inputs['lq']
