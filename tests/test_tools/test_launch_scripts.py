"""Argument handling of tools/slurm_*.sh and tools/dist_*.sh (no cluster).

A fake ``srun`` on ``PATH`` records its arguments and environment; a fake
interpreter does the same for the torchrun launchers, so the scripts'
plumbing is checked in milliseconds (the real 2-process run is in
``test_dist_train.py``).
"""
import os
import os.path as osp
import stat

from helpers import REPO_ROOT, TOOLS_DIR, run_command, subprocess_env

RECORDER = '''#!/usr/bin/env bash
{{
  echo "PYTHONPATH=$PYTHONPATH"
  echo "MASTER_PORT=${{MASTER_PORT:-}}"
  for a in "$@"; do echo "ARG=$a"; done
}} > "{out}"
'''


def _recorder(path, out):
    """Write an executable that records its args/env into ``out``."""
    with open(path, 'w') as f:
        f.write(RECORDER.format(out=out))
    os.chmod(path, os.stat(path).st_mode | stat.S_IEXEC)
    return str(path)


def _recorded(out):
    """Parse a recording into (env dict, argument list)."""
    with open(out) as f:
        lines = f.read().splitlines()
    env = dict(
        line.split('=', 1) for line in lines if not line.startswith('ARG='))
    return env, [line[4:] for line in lines if line.startswith('ARG=')]


def test_slurm_train_and_test_scripts(tmp_path):
    """srun gets the partition, resources, SRUN_ARGS and the tool args."""
    bindir = tmp_path / 'bin'
    bindir.mkdir()
    out = tmp_path / 'srun.txt'
    _recorder(bindir / 'srun', out)
    env = subprocess_env(
        dict(
            PATH=f'{bindir}{os.pathsep}{os.environ["PATH"]}',
            GPUS='4',
            GPUS_PER_NODE='2',
            CPUS_PER_TASK='3',
            SRUN_ARGS='--quotatype=auto --exclusive',
            PYTHON='py',
            MASTER_PORT='23456'))
    cmd = [
        'bash',
        osp.join(TOOLS_DIR, 'slurm_train.sh'), 'part', 'job', 'cfg.py', 'wd',
        '--resume', '--cfg-options', 'a=1'
    ]
    run_command(cmd, env=env)
    rec_env, args = _recorded(out)
    assert args[:9] == [
        '-p', 'part', '--job-name=job', '--gres=gpu:2', '--ntasks=4',
        '--ntasks-per-node=2', '--cpus-per-task=3', '--kill-on-bad-exit=1',
        '--quotatype=auto'
    ]
    assert args[9:] == [
        '--exclusive', 'py', '-u',
        osp.join(TOOLS_DIR, 'train.py'), 'cfg.py', '--work-dir=wd',
        '--launcher=slurm', '--resume', '--cfg-options', 'a=1'
    ]
    assert osp.samefile(rec_env['PYTHONPATH'].split(os.pathsep)[0], REPO_ROOT)
    assert rec_env['MASTER_PORT'] == '23456'

    cmd = [
        'bash',
        osp.join(TOOLS_DIR, 'slurm_test.sh'), 'part', 'job', 'cfg.py',
        'ck.pth', '--out', 'm.json'
    ]
    run_command(cmd, env=env)
    _, args = _recorded(out)
    assert args[-8:] == [
        'py', '-u',
        osp.join(TOOLS_DIR, 'test.py'), 'cfg.py', 'ck.pth', '--launcher=slurm',
        '--out', 'm.json'
    ]


def test_dist_scripts_use_torchrun_with_env(tmp_path):
    """NNODES/NODE_RANK/PORT/MASTER_ADDR reach torch.distributed.run."""
    out = tmp_path / 'py.txt'
    fake_python = _recorder(tmp_path / 'python', out)
    env = subprocess_env(
        dict(
            PYTHON=fake_python,
            NNODES='2',
            NODE_RANK='1',
            PORT='24680',
            MASTER_ADDR='10.0.0.1'))
    run_command(
        ['bash',
         osp.join(TOOLS_DIR, 'dist_train.sh'), 'cfg.py', '3', '--amp'],
        env=env)
    rec_env, args = _recorded(out)
    assert args == [
        '-m', 'torch.distributed.run', '--nnodes=2', '--node_rank=1',
        '--master_addr=10.0.0.1', '--nproc_per_node=3', '--master_port=24680',
        osp.join(TOOLS_DIR,
                 'train.py'), 'cfg.py', '--launcher', 'pytorch', '--amp'
    ]
    assert osp.samefile(rec_env['PYTHONPATH'].split(os.pathsep)[0], REPO_ROOT)

    env.pop('PORT')
    cmd = [
        'bash',
        osp.join(TOOLS_DIR, 'dist_test.sh'), 'cfg.py', 'ck.pth', '1', '--out',
        'm.json'
    ]
    run_command(cmd, env=env)
    _, args = _recorded(out)
    assert '--master_port=29500' in args
    assert args[-7:] == [
        osp.join(TOOLS_DIR, 'test.py'), 'cfg.py', 'ck.pth', '--launcher',
        'pytorch', '--out', 'm.json'
    ]
