"""tools/train.py end to end: train, resume bit-exactly, then tools/test.py.

One uninterrupted 4-iteration run (checkpoints at iterations 2 and 4,
validation with PSNR/SSIM under MultiValLoop at both) is compared with a run
resumed from its iteration-2 checkpoint in a fresh copy of the work dir. The
DiffIR stage-2 generator draws diffusion noise in its training forward and
the pipeline crops/flips at random, so this only passes when the data order
*and* all random states are restored (see
diffir_mm.engine.random_state_hook.RandomStateCheckpointHook).
"""
import json
import os
import os.path as osp
import shutil

import pytest
import torch
from helpers import TOOLS_DIR, run_python, write_tiny_config

TRAIN = osp.join(TOOLS_DIR, 'train.py')
TEST = osp.join(TOOLS_DIR, 'test.py')


@pytest.fixture(scope='module')
def full_run(tmp_path_factory, tiny_pairs):
    """An uninterrupted 4-iteration training run.

    Returns:
        dict: ``cfg`` (config path), ``work_dir``, ``log`` (output).
    """
    root = tmp_path_factory.mktemp('train_full')
    cfg = write_tiny_config(str(root / 'tiny_diffir.py'), tiny_pairs)
    work_dir = str(root / 'full')
    proc = run_python([TRAIN, cfg, '--work-dir', work_dir])
    return dict(cfg=cfg, work_dir=work_dir, log=proc.stdout, root=root)


def _load(path):
    """A full mmengine checkpoint, read safely (weights_only=True)."""
    from diffir_mm.checkpoint import read_checkpoint

    return read_checkpoint(path)


def test_train_writes_checkpoints_and_validates(full_run):
    """4 iterations, checkpoints at 2 and 4, PSNR/SSIM validation, quiet."""
    work_dir, log = full_run['work_dir'], full_run['log']
    for name in ('iter_2.pth', 'iter_4.pth', 'last_checkpoint'):
        assert osp.exists(osp.join(work_dir, name)), name
    assert 'tiny/PSNR' in log and 'tiny/SSIM' in log
    ckpt = _load(osp.join(work_dir, 'iter_4.pth'))
    assert ckpt['meta']['iter'] == 4
    assert 'rng_state' in ckpt and 'optimizer' in ckpt
    assert any(k.startswith('generator.') for k in ckpt['state_dict'])
    # the warning filter hides the import-time noise of the mm stack
    assert 'FutureWarning' not in log


def test_resume_is_bit_exact(full_run):
    """Resuming from iter 2 in a fresh work dir reproduces iter 4 exactly."""
    work_dir = full_run['work_dir']
    resume_dir = osp.join(str(full_run['root']), 'resumed')
    os.makedirs(resume_dir)
    shutil.copy(osp.join(work_dir, 'iter_2.pth'), resume_dir)
    with open(osp.join(resume_dir, 'last_checkpoint'), 'w') as f:
        f.write(osp.join(resume_dir, 'iter_2.pth'))

    proc = run_python(
        [TRAIN, full_run['cfg'], '--work-dir', resume_dir, '--resume'])
    log = proc.stdout
    assert 'resumed epoch: 0, iter: 2' in log
    assert 'Advance dataloader 2 steps' in log
    assert 'random states restored from the checkpoint of iter 2' in log

    full = _load(osp.join(work_dir, 'iter_4.pth'))
    resumed = _load(osp.join(resume_dir, 'iter_4.pth'))
    assert resumed['meta']['iter'] == 4
    assert full['state_dict'].keys() == resumed['state_dict'].keys()
    mismatched = [
        k for k, v in full['state_dict'].items()
        if not torch.equal(v, resumed['state_dict'][k])
    ]
    assert not mismatched, f'{len(mismatched)} tensors differ: {mismatched[:5]}'
    # optimizer moments and scheduler state match too
    full_opt = full['optimizer']['state']
    resumed_opt = resumed['optimizer']['state']
    assert full_opt.keys() == resumed_opt.keys()
    for idx, state in full_opt.items():
        for key, value in state.items():
            assert torch.equal(
                torch.as_tensor(value), torch.as_tensor(resumed_opt[idx][key]))
    assert full['param_schedulers'] == resumed['param_schedulers']


def test_test_tool_writes_metrics_json(full_run, tmp_path):
    """tools/test.py --out writes the PSNR/SSIM metrics as JSON."""
    out = tmp_path / 'metrics.json'
    run_python([
        TEST, full_run['cfg'],
        osp.join(full_run['work_dir'], 'iter_4.pth'), '--out',
        str(out), '--work-dir',
        str(tmp_path / 'test_work')
    ])
    metrics = json.loads(out.read_text())
    # the runtime base's TensorboardVisBackend wrote event files offline
    assert list((tmp_path / 'test_work').rglob('events.out.tfevents.*'))
    assert set(metrics) >= {'tiny/PSNR', 'tiny/SSIM'}, metrics
    assert all(isinstance(v, float) for v in metrics.values())
    assert 0 < metrics['tiny/PSNR'] < 100
    assert -1 <= metrics['tiny/SSIM'] <= 1
