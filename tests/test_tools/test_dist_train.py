"""tools/dist_train.sh: two CPU processes (gloo) train to completion."""
import os.path as osp
import re

from helpers import (TOOLS_DIR, free_port, run_command, subprocess_env,
                     write_tiny_config)


def test_dist_train_two_cpu_processes(tmp_path, tiny_pairs):
    """torchrun + gloo: 2 processes, --auto-scale-lr doubles the LR."""
    cfg = write_tiny_config(
        str(tmp_path / 'tiny_dist.py'),
        tiny_pairs,
        max_iters=2,
        interval=2,
        batch_size=1)
    work_dir = str(tmp_path / 'dist')
    env = subprocess_env(dict(PORT=str(free_port()), OMP_NUM_THREADS='1'))
    cmd = [
        'bash',
        osp.join(TOOLS_DIR, 'dist_train.sh'), cfg, '2', '--work-dir', work_dir,
        '--auto-scale-lr', '--cfg-options', 'auto_scale_lr.base_batch_size=1'
    ]
    proc = run_command(cmd, env=env)
    log = proc.stdout
    assert osp.exists(osp.join(work_dir, 'iter_2.pth'))
    # one line per process announcing the backend switch
    assert log.count("switching env_cfg.dist_cfg.backend from 'nccl' to "
                     "'gloo'") == 2
    assert 'Distributed training: True' in log
    assert re.search(r'GPU number: 2\b', log)
    # --auto-scale-lr: 2 processes x batch 1 over base batch size 1
    assert 'Scaling the original LR by 2.0' in log
    assert 'tiny/PSNR' in log
