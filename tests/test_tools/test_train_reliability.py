"""A training run loses nothing: kills during saves, non-finite steps, bad images, a full disk.

Tiny versions of the real recipes (``configs/diffir_deblur_s{1,2}.py``,
``configs/diffir_sisr_x4_s2_gan.py``, ``configs/diffir_inpaint_celeba_s1.py``) through
``tools/train.py``'s ``main``, each run a fork of one interpreter (``helpers.train_in_forks``:
importing the mm stack costs more than a tiny run here); the real-kill and the distributed
tests start ``tools/train.py`` itself. Reference for every comparison: an uninterrupted run of
the same config, compared bit for bit (weights, EMA, optimizer states, schedules).

* a save interrupted at each of its steps (``helpers.SAVE_FAULTS``), with the runtime base's
  rotation and with ``max_keep_ckpts=1``, then ``--resume``; SIGKILLs while a checkpoint is
  written; an empty pointer and a truncated checkpoint left by mmengine's own hook;
* ``lr=1e6``: one ``error:`` line, exit status 1, every checkpoint finite, ``--resume`` from the
  named checkpoint works; one injected ``nan`` step equals a run that left that batch out
  (``UndoIterationHook``), for stage 1 and 2, the GAN and the inpainting editor and two
  processes;
* unreadable training images: named once each, skipped; strict mode stops at the first;
* a full disk (a tmpfs work dir when root may mount one, else an injected ``ENOSPC``).
"""
import glob
import os
import os.path as osp
import re
import shutil
import signal
import subprocess
import time

import cv2
import pytest
import torch

from helpers import (NO_EVAL_CONFIG_LINES, PYTHON, REPO_ROOT, SAVE_FAULTS, TOOLS_DIR,
                     assert_same_training_state, free_port, hooks_env, make_paired_images,
                     run_command, run_python, sample_image, tiny_deblur_config_text,
                     train_in_forks, write_test_hooks_module)

TRAIN = osp.join(TOOLS_DIR, 'train.py')
ITERS = 4  # every run: 4 iterations, a checkpoint after each
FAULT_AT = 3  # the save interrupted (the first one after a rotation with max_keep_ckpts=1)
NAN_AT = 3  # the iteration whose inputs become nan


def _error_lines(stderr):
    return [line for line in stderr.splitlines() if 'error:' in line]


def _checkpoints(work_dir):
    return sorted(glob.glob(osp.join(work_dir, 'iter_*.pth')))


def _all_finite(path):
    from diffir_mm.checkpoint import read_checkpoint
    from diffir_mm.engine.nonfinite_guard import nonfinite_entries

    ckpt = read_checkpoint(path)
    return not [k for part in ('state_dict', 'optimizer')
                for k in nonfinite_entries(ckpt[part], part)]


@pytest.fixture(scope='module')
def root(tmp_path_factory):
    """Deblurring pairs, the test-hooks module and the tiny stage-1 config (4 iterations)."""
    root = tmp_path_factory.mktemp('reliability')
    make_paired_images(str(root / 'train'), num=3, size=64, mode='blur')
    hooks = write_test_hooks_module(str(root))
    overrides = NO_EVAL_CONFIG_LINES + f"""
custom_imports = dict(imports=['diffir_mm.registration', '{hooks}'], allow_failed_imports=False)
train_cfg = dict(max_iters={ITERS}, val_interval=1000)
default_hooks = dict(logger=dict(interval=1),
                     checkpoint=dict(interval=1, max_keep_ckpts=3, save_best=None))
"""
    (root / 's1.py').write_text(tiny_deblur_config_text(root, 'diffir_deblur_s1.py') + overrides)
    (root / 'hooks.txt').write_text(hooks)
    return root


def _argv(root, work, *options, config='s1.py', resume=False):
    argv = [str(root / config), '--work-dir', str(root / work)]
    argv += ['--resume'] if resume else []
    return argv + (['--cfg-options', *options] if options else [])


def _keep(n):
    return f'default_hooks.checkpoint.max_keep_ckpts={n}'


# ------------------------------------------------------------------------------------------
# saves interrupted at every step, real kills, broken pointers
# ------------------------------------------------------------------------------------------
SCENARIOS = [(kind, keep) for keep in (3, 1) for kind in SAVE_FAULTS]


@pytest.fixture(scope='module')
def saves(root):
    """The reference run, then per scenario a run dying in a save and its ``--resume``."""
    runs = [dict(argv=_argv(root, 'ref'))]
    for kind, keep in SCENARIOS:
        work = f'{kind}_{keep}'
        runs.append(dict(argv=_argv(root, work, _keep(keep)), fault=[kind, FAULT_AT]))
        runs.append(dict(argv=_argv(root, work, _keep(keep), resume=True)))
    # real SIGKILLs while a checkpoint is being written (its temporary file exists), twice
    temp = str(root / 'killed' / '.iter_*.pth.*.tmp')
    runs += [dict(argv=_argv(root, 'killed', _keep(1)), kill_when=temp),
             dict(argv=_argv(root, 'killed', _keep(1), resume=True), kill_when=temp),
             dict(argv=_argv(root, 'killed', _keep(1), resume=True))]
    # what mmengine's CheckpointHook can leave: an empty pointer, a truncated newest checkpoint
    damaged = root / 'damaged'
    runs.append(dict(argv=_argv(root, 'damaged', resume=True),
                     copytree=[str(root / 'ref'), str(damaged)],
                     truncate=[[str(damaged / 'last_checkpoint'), 0],
                               [str(damaged / f'iter_{ITERS}.pth'), 1000]]))
    results = train_in_forks(runs, str(root))
    by_name = dict(ref=results[0], killed=results[-4:-1], damaged=results[-1])
    for index, scenario in enumerate(SCENARIOS):
        by_name[scenario] = results[1 + 2 * index: 3 + 2 * index]
    return by_name


def test_reference_run_keeps_its_rotation(root, saves):
    ref = saves['ref']
    assert ref['rc'] == 0, ref['stderr'][-3000:]
    assert [f for f in ref['files'] if f.startswith('iter_')] == \
        [f'iter_{i}.pth' for i in range(ITERS - 2, ITERS + 1)]
    assert ref['pointer'] == str(root / 'ref' / f'iter_{ITERS}.pth')
    assert not [f for f in ref['files'] if f.endswith('.tmp')]


@pytest.mark.parametrize('kind,keep', SCENARIOS)
def test_interrupted_save_resumes_bit_exactly(root, saves, kind, keep):
    """Dying at any step of a save leaves complete checkpoints and a pointer to one of them;
    ``--resume`` finishes with exactly the uninterrupted run's state."""
    crashed, resumed = saves[(kind, keep)]
    work = root / f'{kind}_{keep}'
    assert crashed['rc'] == 137, crashed['stderr'][-3000:]
    # the pointer names a checkpoint that exists; nothing half-written carries a final name
    assert crashed['pointer'] and osp.basename(crashed['pointer']) in crashed['files']
    temps = [f for f in crashed['files'] if f.endswith('.tmp')]
    assert len(temps) == (1 if kind in ('during_write', 'during_pointer') else 0), temps
    assert len([f for f in crashed['files'] if f.startswith('iter_')]) >= 1
    assert resumed['rc'] == 0, resumed['stderr'][-3000:]
    log = resumed['stdout']
    assert re.search(r'resumed epoch: 0, iter: \d', log)
    if temps:
        assert 'removed 1 temporary file(s) of an interrupted save' in log
    assert not [f for f in os.listdir(work) if f.endswith('.tmp')]
    assert_same_training_state(root / 'ref' / f'iter_{ITERS}.pth', work / f'iter_{ITERS}.pth')


def test_sigkill_during_saves_resumes_bit_exactly(root, saves):
    """Two runs killed (SIGKILL) while a checkpoint is written, max_keep_ckpts=1."""
    first, second, last = saves['killed']
    assert first['rc'] == -signal.SIGKILL and second['rc'] == -signal.SIGKILL
    for killed in (first, second):
        assert killed['pointer'] is None or osp.isfile(killed['pointer'])
    assert last['rc'] == 0, last['stderr'][-3000:]
    assert_same_training_state(root / 'ref' / f'iter_{ITERS}.pth',
                               root / 'killed' / f'iter_{ITERS}.pth')


def test_resume_falls_back_past_an_empty_pointer_and_a_truncated_checkpoint(root, saves):
    run = saves['damaged']
    assert run['rc'] == 0, run['stderr'][-3000:]
    lines = [line for line in run['stdout'].splitlines() if '--resume:' in line]
    assert len(lines) == 1, lines
    assert 'last_checkpoint is empty' in lines[0]
    assert f'resuming from {root / "damaged" / f"iter_{ITERS - 1}.pth"}' in lines[0]
    assert f'skipped: iter_{ITERS}.pth' in lines[0]
    assert_same_training_state(root / 'ref' / f'iter_{ITERS}.pth',
                               root / 'damaged' / f'iter_{ITERS}.pth')


def test_sigkill_of_tools_train_during_a_save(root, saves):
    """A real ``tools/train.py`` process killed while writing a checkpoint, max_keep_ckpts=1."""
    work = root / 'killed_cli'
    cmd = [PYTHON, TRAIN, *_argv(root, 'killed_cli', _keep(1))]
    proc = subprocess.Popen(cmd, env=hooks_env(str(root)), cwd=REPO_ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while proc.poll() is None and not glob.glob(str(work / '.iter_*.pth.*.tmp')):
            time.sleep(0.002)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, 'the run ended before a save could be killed'
    run_python([TRAIN, *_argv(root, 'killed_cli', _keep(1), resume=True)],
               env=hooks_env(str(root)), timeout=900)
    assert_same_training_state(root / 'ref' / f'iter_{ITERS}.pth', work / f'iter_{ITERS}.pth')
