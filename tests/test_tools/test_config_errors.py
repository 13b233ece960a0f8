"""``tools/train.py`` / ``tools/test.py``: user mistakes end in one line naming the key to set."""
import os.path as osp

import pytest
from helpers import REPO_ROOT, TOOLS_DIR, run_python, subprocess_env, write_tiny_config


def _run(tool, args, tmp_path, **env):
    proc = run_python([osp.join(TOOLS_DIR, tool)] + args + ['--work-dir', str(tmp_path / 'w')],
                      check=False, cwd=str(tmp_path), env=subprocess_env(env), timeout=600)
    return proc


def _assert_one_line(proc, *needles):
    assert proc.returncode == 1, proc.stdout[-3000:]
    assert 'Traceback' not in proc.stdout, proc.stdout[-3000:]
    errors = [line for line in proc.stdout.splitlines() if ': error: ' in line]
    assert len(errors) == 1, proc.stdout[-3000:]
    for needle in needles:
        assert needle in errors[0], errors[0]


def test_test_tool_names_the_missing_data_folder(tmp_path):
    cfg = osp.join(REPO_ROOT, 'configs', 'diffir_sr_s2.py')
    proc = _run('test.py', [cfg, cfg], tmp_path)  # any existing file passes as CHECKPOINT
    _assert_one_line(proc, 'data folder not found: data/RealSR',
                     'test_dataloader.0.dataset.data_root')


def test_test_tool_names_the_missing_sub_folder(tmp_path, tiny_pairs):
    cfg = write_tiny_config(str(tmp_path / 'tiny.py'), tiny_pairs)
    option = 'test_dataloader.dataset.data_prefix.img=LR'
    proc = _run('test.py', [cfg, cfg, '--cfg-options', option], tmp_path)
    _assert_one_line(proc, osp.join(tiny_pairs, 'LR'), 'test_dataloader.dataset.data_prefix.img')


def test_train_tool_names_the_missing_stage1_checkpoint(tmp_path, tiny_pairs):
    cfg = osp.join(REPO_ROOT, 'configs', 'diffir_deblur_s2.py')
    roots = [f'{loader}.dataset.data_root={tiny_pairs}' for loader in ('train_dataloader',)]
    proc = _run('train.py', [cfg, '--cfg-options', *roots, 'val_dataloader=None', 'val_cfg=None',
                             'val_evaluator=None', 'train_dataloader.dataset.data_prefix.img=lq',
                             'train_dataloader.dataset.data_prefix.gt=gt',
                             'train_dataloader.num_workers=0', 'model.stage1_checkpoint=None'],
                tmp_path)
    _assert_one_line(proc, 'stage-1 checkpoint', 'model.stage1_checkpoint')
    missing = str(tmp_path / 'no_such_s1.pth')
    proc = _run('train.py', [cfg, '--cfg-options', *roots, 'val_dataloader=None', 'val_cfg=None',
                             'val_evaluator=None', 'train_dataloader.dataset.data_prefix.img=lq',
                             'train_dataloader.dataset.data_prefix.gt=gt',
                             'train_dataloader.num_workers=0',
                             f'model.stage1_checkpoint={missing}'], tmp_path)
    _assert_one_line(proc, missing, 'set model.stage1_checkpoint')


@pytest.mark.parametrize('option, needles', [
    ('model.generator.type=DiffIRS2Nett', ('DiffIRS2Nett', 'model.generator.type')),
    ('model.generator.dimm=8', ("'dimm'", 'model.generator.dimm', 'DiffIRS2Net')),
])
def test_train_tool_names_the_config_typo(tmp_path, tiny_pairs, option, needles):
    cfg = write_tiny_config(str(tmp_path / 'tiny.py'), tiny_pairs)
    proc = _run('train.py', [cfg, '--cfg-options', option], tmp_path)
    _assert_one_line(proc, *needles)


def test_debug_shows_the_traceback(tmp_path, tiny_pairs):
    cfg = write_tiny_config(str(tmp_path / 'tiny.py'), tiny_pairs)
    args = [cfg, '--cfg-options', 'model.generator.type=DiffIRS2Nett']
    for extra, env in ((['--debug'], {}), ([], {'DIFFIR_DEBUG': '1'})):
        proc = _run('train.py', args + extra, tmp_path, **env)
        assert proc.returncode != 0
        assert 'Traceback' in proc.stdout and 'DiffIRS2Nett' in proc.stdout


def test_a_full_disk_anywhere_is_one_line_naming_the_free_space(tmp_path):
    import errno
    import os

    from diffir_mm.utils.config_errors import explain

    full = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    text = explain(full, {'work_dir': str(tmp_path)})
    assert text.startswith(f'cannot write {tmp_path}: No space left on device (')
    assert text.endswith(' free)')
    full.filename = str(tmp_path / 'vis_data' / 'scalars.json')
    assert explain(full).startswith(f'cannot write {full.filename}: No space left on device (')
    assert explain(OSError(errno.EIO, 'I/O error')) is None  # anything else keeps its traceback
