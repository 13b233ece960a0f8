"""Helpers shared by the torch-only network tests (``diffir_mm.archs``).

The reference data live outside the repository, in ``../shared/fixtures`` (see its README):
``official/official_<variant>.pt`` are outputs of the authors' code on tiny random networks and
``official_keys/keys_<task>_S<stage>.json`` are the full-size key layouts of every release.
Tests that need them are skipped (with the reason) when the folder is absent.
"""
from __future__ import annotations

import json
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

#: Float32 tolerance against the float64 references of the official code.
TOL = 1e-4


def max_abs_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    """Largest absolute element difference, computed in float64."""
    assert a.shape == b.shape, f'shape {tuple(a.shape)} != {tuple(b.shape)}'
    return (a.double() - b.double()).abs().max().item()


def load_official_fixture(variant: str) -> Dict[str, Any]:
    """Load ``official_<variant>.pt``; skip the calling test if it is not available."""
    path = OFFICIAL_DIR / f'official_{variant}.pt'
    if not path.is_file():
        pytest.skip(f'reference fixture {path} is not available (needs ../shared/fixtures)')
    return torch.load(path, map_location='cpu', weights_only=True)


def load_keys_fixture(name: str, stage: int) -> Dict[str, list]:
    """``{key: shape}`` of ``keys_<name>_S<stage>.json``; skip if it is not available."""
    path = KEYS_DIR / f'keys_{name}_S{stage}.json'
    if not path.is_file():
        pytest.skip(f'key-layout fixture {path} is not available (needs ../shared/fixtures)')
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
