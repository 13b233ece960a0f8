"""The official-parity fixtures of ``tests/fixtures/official``: where they come from.

* the synthetic weights they describe are a pure function of seed, stream and index; the
  generator refuses with one line without the authors' code;
* with the optional shared folder (``$DIFFIR_SHARED`` or ``<repo>/../shared``; skipped without
  it): ``tests/fixtures/make_official_fixtures.py`` run on the authors' code gives the committed
  files again, and the original full-size fixtures of ``shared/fixtures/official`` still match
  our networks to ``TOL``.
"""
from __future__ import annotations

import gzip
import json
import math
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import torch

from diffir_mm import load_official

from helpers import (FIXTURES, OFFICIAL_VARIANTS, REPO_ROOT, TOL, arch_kwargs, counter_uniform,
                     max_abs_diff, net_input, require_shared, run_python, shared_folder,
                     subprocess_env)

GENERATOR = Path(REPO_ROOT) / 'tests' / 'fixtures' / 'make_official_fixtures.py'
#: Stored float32 values regenerated elsewhere (another CPU, thread count or torch build) may
#: differ in the last bits; a real change of the official code or the inputs is far larger.
FLOAT_RTOL = FLOAT_ATOL = 1e-6


def test_require_shared_skips_with_the_reason(monkeypatch, tmp_path: Path):
    monkeypatch.setenv('DIFFIR_SHARED', str(tmp_path / 'nowhere'))
    with pytest.raises(pytest.skip.Exception, match='DIFFIR_SHARED') as info:
        require_shared('reference')
    assert str(tmp_path / 'nowhere' / 'reference') in str(info.value)
    (tmp_path / 'reference').mkdir()
    monkeypatch.setenv('DIFFIR_SHARED', str(tmp_path))
    assert require_shared('reference') == tmp_path / 'reference'


def test_generator_refuses_without_the_official_code(tmp_path: Path):
    env = subprocess_env({'DIFFIR_SHARED': str(tmp_path / 'nowhere')})
    proc = run_python([str(GENERATOR), '--out', str(tmp_path / 'out')], env=env, check=False)
    assert proc.returncode == 2, proc.stdout
    assert proc.stdout.strip().splitlines() == [
        f'error: the official DiffIR code is not at {tmp_path}/nowhere/reference/official_diffir:'
        ' put the shared folder beside the repository or set DIFFIR_SHARED=<folder>']
    assert not (tmp_path / 'out').exists()


def test_counter_uniform_is_a_pure_function_of_seed_stream_and_index():
    values = counter_uniform(seed=1, stream=3, count=100_000)
    assert values.dtype == np.float64 and values.min() >= -1.0 and values.max() < 1.0
    assert abs(values.mean()) < 0.01 and abs(values.std() - 1 / math.sqrt(3)) < 0.01
    np.testing.assert_array_equal(counter_uniform(1, 3, 10), values[:10])  # a prefix: by index
    for other in (counter_uniform(2, 3, 1000), counter_uniform(1, 4, 1000)):
        assert np.abs(np.corrcoef(values[:1000], other)[0, 1]) < 0.1


# ------------------------------------------------------------------------ with the shared folder


def _compare(new: Any, old: Any, where: str) -> None:
    """``new`` == ``old``, stored float32 values to ``FLOAT_RTOL`` / ``FLOAT_ATOL``."""
    assert type(new) is type(old), where
    if isinstance(new, torch.Tensor):
        assert (new.dtype, new.shape) == (old.dtype, old.shape), where
        if new.is_floating_point():
            torch.testing.assert_close(new, old, rtol=FLOAT_RTOL, atol=FLOAT_ATOL, msg=where)
        else:
            assert torch.equal(new, old), where
    elif isinstance(new, dict):
        assert list(new) == list(old), where
        for key in new:
            if key != 'official_float32_max_abs_dev':  # measured: differs from machine to machine
                _compare(new[key], old[key], f'{where}[{key!r}]')
    elif isinstance(new, (list, tuple)):
        assert len(new) == len(old), where
        for i, (a, b) in enumerate(zip(new, old)):
            _compare(a, b, f'{where}[{i}]')
    elif isinstance(new, float):
        assert math.isclose(new, old, rel_tol=FLOAT_RTOL, abs_tol=FLOAT_ATOL), where
    else:
        assert new == old, where


def _compare_row_digests(new: dict, old: dict) -> None:
    """The SR x4 result: the stored pixels (near a rounding boundary) agree but for a few that
    float32 rounding moves across the ``near_half`` margin, their values to ``FLOAT_RTOL``, and
    every row without such a pixel has the same digest."""
    new_near, old_near = set(new['near_index'].tolist()), set(old['near_index'].tolist())
    moved = new_near ^ old_near
    assert len(moved) <= 4, f'{len(moved)} pixels are near a rounding boundary in one only'
    both = np.array(sorted(new_near & old_near), dtype=np.int64)

    def values(data: dict) -> torch.Tensor:
        return data['near_value'][np.searchsorted(data['near_index'].numpy(), both)]

    torch.testing.assert_close(values(new), values(old), rtol=FLOAT_RTOL, atol=0)
    width = new['shape'][1] * new['shape'][2]
    unstable = {index // width for index in moved}
    differing = {row for row, (a, b) in enumerate(zip(new['row_digests'], old['row_digests']))
                 if a != b}
    assert differing <= unstable, f'rows {sorted(differing - unstable)[:10]} differ'


def _load_pt(path: Path) -> dict:
    return torch.load(path, map_location='cpu', weights_only=True)


def test_committed_fixtures_are_what_the_official_code_computes(tmp_path: Path):
    require_shared('reference', 'official_diffir')
    require_shared('fixtures', 'official_keys')
    env = subprocess_env({'DIFFIR_SHARED': str(shared_folder())})
    run_python([str(GENERATOR), '--out', str(tmp_path)], env=env, timeout=900)
    committed = sorted(p.name for p in FIXTURES.iterdir() if p.name != 'README.md')
    assert sorted(p.name for p in tmp_path.iterdir()) == committed
    for name in committed:
        new, old = tmp_path / name, FIXTURES / name
        if name.endswith('.json.gz'):
            with gzip.open(new, 'rt') as a, gzip.open(old, 'rt') as b:
                assert json.load(a) == json.load(b), name
        elif name.endswith('.png'):
            a, b = (cv2.imread(str(p), cv2.IMREAD_UNCHANGED).astype(int) for p in (new, old))
            assert a.shape == b.shape, name
            assert np.abs(a - b).max() <= 1 and (a != b).mean() < 1e-3, name  # float32 rounding
        else:
            a, b = _load_pt(new), _load_pt(old)
            if name == 'cli_sr_x4.pt':
                _compare_row_digests(a, b)
                for key in ('near_index', 'near_value', 'row_digests'):
                    del a[key], b[key]
            _compare(a, b, name)


@pytest.mark.parametrize('variant', sorted(OFFICIAL_VARIANTS))
def test_original_full_size_fixtures_still_match(variant: str):
    """The 15 MB fixtures the in-repository ones replace (weights stored, other inputs)."""
    path = require_shared('fixtures', 'official', f'official_{variant}.pt')
    data = torch.load(path, map_location='cpu', weights_only=True)
    task, scale = OFFICIAL_VARIANTS[variant]
    x, gt = net_input(data), data['inputs']['gt']
    s1 = load_official(data['s1_state_dict'], task=task, stage=1, scale=scale,
                       **arch_kwargs(data))
    s2 = load_official(data['s2_state_dict'], task=task, stage=2, scale=scale,
                       **arch_kwargs(data))
    with torch.no_grad():
        assert max_abs_diff(s1.extract_prior(x, gt), data['s1_ipr']) <= TOL
        assert max_abs_diff(s1(x, gt), data['s1_output']) <= TOL
        assert max_abs_diff(s2.estimate_prior(x, noise=data['s2_x_T']), data['s2_ipr']) <= TOL
        assert max_abs_diff(s2(x, noise=data['s2_x_T']), data['s2_output']) <= TOL
        steps = s2.reverse_steps(x, noise=data['s2_train_noise'], teacher_prior=data['s1_ipr'])
    for ours, ref in zip(steps, data['s2_train_ipr_list']):
        assert max_abs_diff(ours, ref) <= TOL
