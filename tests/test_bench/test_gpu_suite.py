"""bench/gpu_suite.py: the ``--smoke`` run produces every row kind, so the GPU suite cannot rot.

The smoke run uses tiny networks on the CPU (``CUDA_VISIBLE_DEVICES=''``); rows that need CUDA
(graphs) say so, and the official-network rows run when the official code is found (the
``.gpu_carry`` copy or ``../shared``), else they say why they were skipped.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / 'bench'))

import gpu_suite  # noqa: E402
from official_nets import find_reference, prepare_carry, shared_folder  # noqa: E402

NO_REFERENCE = 'official reference not found'
SHARED_REFERENCE = shared_folder() / 'reference' / 'official_diffir'


@pytest.fixture(scope='module')
def smoke(tmp_path_factory):
    """Rows, output folder and stdout of one ``--smoke`` run (generous budget: nothing skipped
    for time on a loaded machine)."""
    out = tmp_path_factory.mktemp('gpu_suite')
    proc = subprocess.run(
        [sys.executable, str(ROOT / 'bench' / 'gpu_suite.py'), '--smoke', '--out', str(out),
         '--budget-s', '1500'], cwd=ROOT, capture_output=True, text=True, timeout=1800,
        env=dict(os.environ, CUDA_VISIBLE_DEVICES=''))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = [json.loads(line) for line in (out / 'rows.jsonl').read_text().splitlines()]
    return rows, out, proc.stdout


def _one(rows, **fields):
    found = [r for r in rows if all(r.get(k) == v for k, v in fields.items())]
    assert found, f'no row with {fields}'
    return found


def test_every_inference_mode_has_a_row(smoke):
    rows, _, _ = smoke
    official = find_reference() is not None
    for impl, precision, mode, _, cuda_only in gpu_suite.Suite.MODES.values():
        for row in _one(rows, kind='inference', impl=impl, precision=precision, mode=mode):
            if cuda_only:
                assert row['status'] == 'skipped' and row['note'] == 'needs CUDA', row
            elif impl == 'official' and not official:
                assert row['status'] == 'skipped' and NO_REFERENCE in row['note'], row
            else:
                assert row['status'] == 'ok', row
                assert row['median_s'] > 0 and row['images_s'] > 0 and row['runs'] >= 1
                assert row['x_floor'] > 0
                if official and impl != 'official':
                    assert row['speedup'] > 0, row
    tasks = {r['task'] for r in rows if r['kind'] == 'inference' and r['status'] == 'ok'}
    assert tasks == {'deblur', 'sr', 'inpaint'}


def test_compiled_rows_trace_without_graph_breaks(smoke):
    rows, _, _ = smoke
    compiled = [r for r in rows if r['kind'] == 'inference' and r['mode'].startswith('compile')
                and r['status'] == 'ok']
    assert {r['mode'] for r in compiled} == {'compile', 'compile-blocks'}
    for row in compiled:
        assert row['note'].endswith(' 0 graph break(s)'), row


def test_training_rows(smoke):
    rows, _, _ = smoke
    official = find_reference() is not None
    for with_cp in (False, True):
        row, = _one(rows, kind='train', section='train-goal', impl='ours', with_cp=with_cp)
        assert row['status'] == 'ok' and row['median_s'] > 0, row
    _one(rows, kind='train', task='deblur', impl='ours', precision='fp32')
    ref, = _one(rows, kind='train', impl='official', precision='fp32')
    assert ref['status'] == ('ok' if official else 'skipped'), ref
    sweep = [r for r in rows if r['kind'] == 'train' and r.get('section') == 'train'
             and r['impl'] == 'ours' and r['status'] == 'ok']
    assert {r['task'] for r in sweep} == {'deblur', 'sr', 'inpaint'}
    assert {1, 2} <= {r['batch'] for r in sweep if r['task'] == 'deblur'}  # the batch loop


def test_ceilings_correctness_and_floors(smoke):
    rows, _, _ = smoke
    names = {r['name']: r for r in rows if r['kind'] == 'ceiling'}
    assert set(names) == {'device copy bandwidth', 'bf16 matmul rate',
                          'fp32 matmul rate (TF32 off)'}
    assert all(r['status'] == 'ok' and r['value'] > 0 for r in names.values())
    checks = {r['task']: r for r in rows if r['kind'] == 'correctness'}
    assert set(checks) == {'deblur', 'sr', 'inpaint'}
    for row in checks.values():
        assert row['finite'] is True
        assert 0 < row['rel_err_bf16_autocast'] < 2e-2 and 0 < row['rel_err_bf16_weights'] < 2e-2
        if find_reference() is not None:
            assert row['status'] == 'ok' and row['max_abs_diff_fp32'] < 1e-5, row
        else:
            assert row['status'] == 'partial' and NO_REFERENCE in row['note'], row
    floors = [r for r in rows if r['kind'] == 'floor']
    assert floors and all(r['gmacs'] > 0 and r['floor_ms'] > 0 for r in floors)


def test_report_files(smoke):
    _, out, stdout = smoke
    report = (out / 'gpu_suite.md').read_text()
    for heading in ('## Ceilings', '## Correctness', '## Roofline floors', '## Inference',
                    '## Training step', '## Goals'):
        assert heading in report and heading in stdout
    assert stdout.rstrip().splitlines()[-1].startswith('done in ')
    env = json.loads((out / 'env.json').read_text())
    assert env['device'] == 'cpu' and env['smoke'] is True


def _suite(tmp_path, **args) -> gpu_suite.Suite:
    defaults = dict(smoke=True, reference=None, sizes_scale=1.0, runs=1, warmup=1,
                    compile_backend='eager', no_compile=False)
    ns = argparse.Namespace(**dict(defaults, **args))
    budget = gpu_suite.Budget(600)
    return gpu_suite.Suite(ns, torch.device('cpu'), gpu_suite.Recorder(tmp_path, budget.start),
                           budget)


def test_out_of_memory_becomes_a_row(tmp_path):
    suite = _suite(tmp_path)

    def body(row):
        raise torch.cuda.OutOfMemoryError('CUDA out of memory. Tried to allocate 2.00 GiB')

    row = suite.guarded(dict(kind='train', task='deblur'), body)
    assert row['status'] == 'oom' and 'out of memory' in row['note']
    saved = [json.loads(line) for line in (tmp_path / 'rows.jsonl').read_text().splitlines()]
    assert saved[-1]['status'] == 'oom'


def test_training_sweep_stops_at_the_first_failed_batch(tmp_path, monkeypatch):
    suite = _suite(tmp_path, smoke=False)
    asked = []

    def fake_row(task, size, batch, with_cp, section, impl='ours', amp=True):
        asked.append((task, size, batch, with_cp, impl, amp))
        return dict(status='oom' if batch >= 4 else 'ok')

    monkeypatch.setattr(suite, 'train_row', fake_row)
    suite.train_sweep()
    deblur_256 = [b for t, s, b, cp, i, amp in asked
                  if (t, s, cp, i, amp) == ('deblur', 256, False, 'ours', True)]
    assert deblur_256 == [1, 2, 4]  # 8 is not tried after 4 ran out of memory
    assert ('deblur', 512, 1, False, 'ours', True) not in asked  # the goal section's row
    assert ('deblur', 512, 1, False, 'official', False) in asked


def test_roofline_counts_the_documented_macs(tmp_path):
    suite = _suite(tmp_path, smoke=False)
    one = suite.roofline(suite.shape('deblur', 1, 256, 256, '256²'))
    two = suite.roofline(suite.shape('deblur', 2, 256, 256, '256²'))
    assert abs(one[0] / 1e9 - 121.0) < 0.06  # diffir_method.md section 1.13
    weights = sum(m.weight.numel() for m in gpu_suite.build_diffir('deblur', 2).modules()
                  if isinstance(m, torch.nn.Conv2d))
    assert two[1] - 2 * weights == 2 * (one[1] - 2 * weights)  # activations scale with batch


def test_without_cuda_it_only_says_so(capsys):
    if torch.cuda.is_available():
        pytest.skip('a CUDA device is present')
    assert gpu_suite.main([]) == 0
    assert 'no CUDA device' in capsys.readouterr().out


@pytest.mark.skipif(not SHARED_REFERENCE.is_dir(),
                    reason=f'official reference {SHARED_REFERENCE} not present')
def test_prepare_copies_the_official_code(tmp_path):
    dest = tmp_path / 'carry' / 'official_diffir'
    copied = prepare_carry(SHARED_REFERENCE, dest)
    assert copied > 0 and find_reference(dest) == dest
    assert not list(dest.rglob('__pycache__'))
