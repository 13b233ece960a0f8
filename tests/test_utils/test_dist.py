"""End of a distributed run (diffir_mm/utils/dist.py): the group is torn down, the rank exits.

A one-rank gloo group with a DDP-wrapped module, as ``tools/train.py`` leaves it after
``runner.train()``, in a child process (``exit_process`` ends the process it runs in).
"""
import textwrap

from helpers import run_python, subprocess_env

BUFFERED = subprocess_env({'PYTHONUNBUFFERED': ''})  # stdout to a pipe is block-buffered

CHILD = textwrap.dedent('''
    import logging, logging.handlers, sys
    import torch
    import torch.distributed as dist
    from diffir_mm.utils.dist import close_process_group, exit_process

    dist.init_process_group('gloo', init_method='file://' + sys.argv[1], rank=0, world_size=1)
    model = torch.nn.parallel.DistributedDataParallel(torch.nn.Linear(2, 2))
    model(torch.ones(1, 2)).sum().backward()  # the reducer has run a collective
    print('before', dist.is_initialized(), close_process_group.__name__)
    del model
    print('closed', close_process_group(), dist.is_initialized())
    print('again', close_process_group())
    buffered = logging.handlers.MemoryHandler(100, target=logging.FileHandler(sys.argv[2]))
    logging.getLogger('child').addHandler(buffered)  # writes only when flushed or closed
    logging.getLogger('child').warning('logged before the exit')
    sys.stdout.write('unflushed line')  # still buffered when exit_process runs
    exit_process(int(sys.argv[3]), distributed=sys.argv[4] == 'dist')
    print('not reached')
''')


def test_close_process_group_then_a_distributed_rank_exits_with_its_status(tmp_path):
    script = tmp_path / 'child.py'
    script.write_text(CHILD)
    log = tmp_path / 'child.log'
    proc = run_python([str(script), str(tmp_path / 'store'), str(log), '3', 'dist'],
                      env=BUFFERED, check=False, timeout=120)
    assert proc.returncode == 3, proc.stdout
    lines = proc.stdout.splitlines()
    assert 'before True close_process_group' in lines
    assert 'closed True False' in lines and 'again False' in lines
    assert lines[-1] == 'unflushed line'  # flushed by exit_process, not lost with os._exit
    assert 'not reached' not in proc.stdout
    assert log.read_text().strip() == 'logged before the exit'


def test_exit_process_outside_a_distributed_run_is_sys_exit(tmp_path):
    script = tmp_path / 'child.py'
    script.write_text(CHILD.replace("exit_process(", "import atexit; atexit.register("
                                    "lambda: print('atexit ran')); exit_process("))
    proc = run_python([str(script), str(tmp_path / 'store'), str(tmp_path / 'log'), '4', 'no'],
                      env=BUFFERED, check=False, timeout=120)
    assert proc.returncode == 4, proc.stdout
    assert proc.stdout.rstrip().endswith('atexit ran')  # normal interpreter exit
