"""A training run loses nothing: kills during saves, non-finite steps, bad images, a full disk.

Tiny versions of the real recipes (``configs/diffir_deblur_s{1,2}.py``,
``configs/diffir_sisr_x4_s2_gan.py``, ``configs/diffir_inpaint_celeba_s1.py``) through
``tools/train.py``'s ``main``, each run a fork of one interpreter (``helpers.train_in_forks``:
importing the mm stack costs more than a tiny run here; the SIGKILLs hit those child
processes); the distributed test starts ``tools/dist_train.sh`` itself. Reference for every
comparison: an uninterrupted run of the same config, compared bit for bit (weights, EMA,
optimizer states, schedules).

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

import cv2
import pytest
import torch

from helpers import (NO_EVAL_CONFIG_LINES, REPO_ROOT, SAVE_FAULTS, TOOLS_DIR,
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


# ------------------------------------------------------------------------------------------
# non-finite steps
# ------------------------------------------------------------------------------------------
GAN_ARCH = dict(task='sr', scale=4, dim=8, num_blocks=[1, 1, 1, 1], num_refinement_blocks=1,
                ffn_expansion_factor=2.2, LayerNorm_type='BiasFree', n_encoder_res=1)
INPAINT_ARCH = 'dim=8, num_blocks=[1, 1, 1, 1], num_refinement_blocks=0, n_encoder_res=1'
EDITORS = ('s1', 's2', 'gan', 'inpaint')


def _run_overrides(root, iters=ITERS):
    return NO_EVAL_CONFIG_LINES + f"""
custom_imports = dict(imports=['diffir_mm.registration', '{(root / 'hooks.txt').read_text()}'],
                      allow_failed_imports=False)
train_cfg = dict(max_iters={iters}, val_interval=1000)
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval={iters}, save_best=None))
visualizer = dict(vis_backends=[dict(type='LocalVisBackend')])
randomness = dict(seed=0, deterministic=True)
"""


def _write_editor_configs(root):
    """Tiny stage-2 (deblur), GAN (SISR x4) and inpainting (CelebA-HQ stage 1) configs."""
    from diffir_mm.archs import DiffIRS1Net, DiffIRS2Net

    s2 = tiny_deblur_config_text(root, 'diffir_deblur_s2.py', extra_model=(
        f"stage1_checkpoint='{root / 'nan_s1_undo' / f'iter_{ITERS}.pth'}',"))
    s2 = s2.replace('gt_sizes=[32, 16])))', 'gt_sizes=[32, 16]), encoder_iters=2))')
    (root / 's2.py').write_text(s2 + _run_overrides(root))

    gan_data = root / 'gan_pairs'
    make_paired_images(str(gan_data), num=2, size=32, mode='downscale', scale=4)
    torch.manual_seed(0)
    for stage, cls in (('s1', DiffIRS1Net), ('s2', DiffIRS2Net)):
        net = cls(**GAN_ARCH)
        torch.save({'state_dict': {f'generator.{k}': v for k, v in net.state_dict().items()}},
                   root / f'gan_{stage}.pth')
    arch = {k: v for k, v in GAN_ARCH.items() if k not in ('task', 'scale')}
    (root / 'gan.py').write_text(f"""
_base_ = ['{REPO_ROOT}/configs/diffir_sisr_x4_s2_gan.py']
model = dict(generator=dict(**{arch!r}), stage1_checkpoint='{root / 'gan_s1.pth'}',
             stage2_checkpoint='{root / 'gan_s2.pth'}', discriminator=dict(mid_channels=8),
             perceptual_loss=dict(vgg_path=None, allow_random_weights=True))
train_dataloader = dict(batch_size=2, num_workers=0, dataset=dict(
    data_root='{gan_data}', data_prefix=dict(img='lq', gt='gt'), ann_file='',
    pipeline=[dict(type='CheckedLoadImageFromFile', key='img', channel_order='rgb'),
              dict(type='CheckedLoadImageFromFile', key='gt', channel_order='rgb'),
              dict(type='PackInputs')]))
custom_hooks = [_base_.ema_hook]
""" + _run_overrides(root))

    for name in ('astronaut', 'coffee', 'chelsea'):
        (root / 'celeba').mkdir(exist_ok=True)
        cv2.imwrite(str(root / 'celeba' / f'{name}.png'), sample_image(name, 64)[..., ::-1])
    (root / 'inpaint.py').write_text(f"""
_base_ = ['{REPO_ROOT}/configs/diffir_inpaint_celeba_s1.py']
model = dict(generator=dict({INPAINT_ARCH}), discriminator=dict(ndf=8, n_layers=2),
             resnet_pl_loss=None)
train_dataloader = dict(batch_size=2, num_workers=0, dataset=dict(
    data_root='{root}', data_prefix=dict(gt='celeba')))
""" + _run_overrides(root))


def _nan_runs(root, editor, *extra):
    """An injected nan at iteration NAN_AT, and the reference that undoes that iteration."""
    config = f'{editor}.py'
    return [dict(argv=_argv(root, f'nan_{editor}', *extra,
                            f'default_hooks.inject.iteration={NAN_AT}',
                            'default_hooks.inject.type=InjectNonFiniteHook', config=config)),
            dict(argv=_argv(root, f'nan_{editor}_undo', *extra,
                            f'default_hooks.undo.iteration={NAN_AT}',
                            'default_hooks.undo.type=UndoIterationHook', config=config))]


@pytest.fixture(scope='module')
def guarded(root):
    """lr=1e6 for 12 iterations; per editor a run with one nan step and its reference."""
    _write_editor_configs(root)
    runs = [dict(argv=_argv(root, 'absurd_lr', 'optim_wrapper.optimizer.lr=1e6',
                            'train_cfg.max_iters=12'))]
    for editor in EDITORS:
        runs += _nan_runs(root, editor)
    results = train_in_forks(runs, str(root))
    by_name = dict(absurd_lr=results[0])
    for index, editor in enumerate(EDITORS):
        by_name[editor] = results[1 + 2 * index: 3 + 2 * index]
    return by_name


def test_absurd_learning_rate_stops_with_one_line(root, guarded):
    run = guarded['absurd_lr']
    assert run['rc'] == 1
    lines = _error_lines(run['stderr'])
    assert len(lines) == 1, run['stderr'][-3000:]
    match = re.search(r'error: iteration (\d+): 5 non-finite steps in a row \(the last: loss = '
                      r'nan, loss_pix = nan\); training stopped\. Last good checkpoint: (\S+) ',
                      lines[0])
    assert match, lines[0]
    stop, named = int(match.group(1)), match.group(2)
    assert named == str(root / 'absurd_lr' / f'iter_{stop - 1}.pth') == run['pointer']
    skipped = re.findall(r'NonFiniteGuardHook: iteration (\d+): loss = nan', run['stdout'])
    assert [int(i) for i in skipped] == list(range(stop - 4, stop))
    checkpoints = _checkpoints(root / 'absurd_lr')
    assert len(checkpoints) == 3 and all(_all_finite(p) for p in checkpoints)

    # --resume from the named checkpoint: two more (skipped) iterations, then done
    proc = run_python([TRAIN, *_argv(root, 'absurd_lr', 'optim_wrapper.optimizer.lr=1e6',
                                     f'load_from={named}', f'train_cfg.max_iters={stop + 1}',
                                     resume=True)],
                      env=hooks_env(str(root)), timeout=900)
    assert f'resumed epoch: 0, iter: {stop - 1}' in proc.stdout
    assert _all_finite(root / 'absurd_lr' / f'iter_{stop + 1}.pth')


@pytest.mark.parametrize('editor', EDITORS)
def test_one_nan_step_equals_leaving_the_batch_out(root, guarded, editor):
    injected, reference = guarded[editor]
    for run in (injected, reference):
        assert run['rc'] == 0, run['stderr'][-3000:]
    warnings = re.findall(r'NonFiniteGuardHook: iteration (\d+): (.*); the update is skipped '
                          r'\(1 in a row, 1 in this run\)', injected['stdout'])
    assert [int(w[0]) for w in warnings] == [NAN_AT], injected['stdout'][-3000:]
    assert 'nan' in warnings[0][1]
    assert 'the update is skipped' not in reference['stdout']
    final = f'iter_{ITERS}.pth'
    assert _all_finite(root / f'nan_{editor}' / final)
    assert_same_training_state(root / f'nan_{editor}_undo' / final, root / f'nan_{editor}' / final)


def test_one_nan_step_on_one_of_two_processes(root):
    """Two processes (gloo), nan on rank 1 only: both skip, and equal leaving the batch out."""
    def dist(work, hook, *options):
        env = hooks_env(str(root), {'PORT': str(free_port())})
        return run_command(['bash', osp.join(TOOLS_DIR, 'dist_train.sh'), str(root / 's1.py'),
                            '2', '--work-dir', str(root / work), '--cfg-options',
                            f'default_hooks.{hook}.iteration={NAN_AT}', *options],
                           env=env, timeout=900)

    injected = dist('ddp_nan', 'inject', 'default_hooks.inject.type=InjectNonFiniteHook',
                    'default_hooks.inject.rank=1')
    reference = dist('ddp_undo', 'undo', 'default_hooks.undo.type=UndoIterationHook')
    warnings = re.findall(r'NonFiniteGuardHook: iteration (\d+): (.*); the update is skipped',
                          injected.stdout)
    assert warnings == [(str(NAN_AT), 'loss = nan, loss_pix = nan on process 1')], warnings
    assert 'the update is skipped' not in reference.stdout
    final = f'iter_{ITERS}.pth'
    assert_same_training_state(root / 'ddp_undo' / final, root / 'ddp_nan' / final)


# ------------------------------------------------------------------------------------------
# unreadable images, a full disk
# ------------------------------------------------------------------------------------------
BAD_FILES = {'truncated': lambda good: good[:len(good) // 2], 'empty': lambda good: b'',
             'text': lambda good: b'not an image\n'}


@pytest.fixture(scope='module')
def small_disk(root, saves):
    """A tmpfs work dir with room for one checkpoint but not two; None where it cannot be
    mounted (not root, or no permission)."""
    mount = root / 'tmpfs'
    mount.mkdir()
    size = int(osp.getsize(root / 'ref' / f'iter_{ITERS}.pth') * 1.5) + (1 << 20)
    if os.geteuid() != 0 or subprocess.run(
            ['mount', '-t', 'tmpfs', '-o', f'size={size}', 'tmpfs', str(mount)],
            capture_output=True).returncode != 0:
        yield None
        return
    try:
        yield mount
    finally:
        subprocess.run(['umount', str(mount)], capture_output=True)


@pytest.fixture(scope='module')
def data_and_disk(root, small_disk):
    """Bad files among the training images (default and strict runs); a full disk."""
    bad = root / 'bad_data' / 'train'
    make_paired_images(str(bad), num=3, size=64, mode='blur')
    good = (bad / 'gt' / 'astronaut.png').read_bytes()
    for name, content in BAD_FILES.items():
        shutil.copy(bad / 'lq' / 'astronaut.png', bad / 'lq' / f'{name}.png')
        (bad / 'gt' / f'{name}.png').write_bytes(content(good))
    data = f'train_dataloader.dataset.data_root={root / "bad_data"}'
    strict = [f'train_dataloader.dataset.pipeline.{i}.on_bad_file=error' for i in (0, 1)]
    disk = root / 'full_disk' if small_disk is None else small_disk / 'run'
    runs = [dict(argv=_argv(root, 'bad_default', data)),
            dict(argv=_argv(root, 'bad_strict', data, *strict)),
            dict(argv=[str(root / 's1.py'), '--work-dir', str(disk)],
                 fault=None if small_disk else ['enospc_during_write', 2]),
            dict(argv=_argv(root, 'disk_resumed', resume=True),
                 copytree=[str(disk), str(root / 'disk_resumed')])]
    results = train_in_forks(runs, str(root))
    return dict(default=results[0], strict=results[1], full=results[2], resumed=results[3],
                disk=disk, tmpfs=small_disk is not None)


def test_unreadable_images_are_named_once_and_skipped(root, data_and_disk):
    run = data_and_disk['default']
    assert run['rc'] == 0, run['stderr'][-3000:]
    folder = root / 'bad_data' / 'train' / 'gt'
    named = re.findall(r'skipped an unreadable training image: (\S+): ([^(]+) \(',
                       run['stdout'])
    assert sorted(path for path, _ in named) == sorted(
        str(folder / f'{name}.png') for name in BAD_FILES), named
    reasons = dict(named)
    assert reasons[str(folder / 'empty.png')] == 'empty file'
    assert reasons[str(folder / 'text.png')].startswith('cannot decode image')
    assert osp.isfile(root / 'bad_default' / f'iter_{ITERS}.pth')


def test_strict_mode_stops_at_the_first_unreadable_image(root, data_and_disk):
    run = data_and_disk['strict']
    assert run['rc'] == 1
    lines = _error_lines(run['stderr'])
    assert len(lines) == 1, run['stderr'][-3000:]
    assert re.search(r"error: unreadable training image \S+/gt/(truncated|empty|text)\.png: .+ "
                     r"\(on_bad_file='error' stops at the first\)", lines[0]), lines[0]
    assert 'skipped an unreadable' not in run['stdout']


def test_full_disk_is_one_line_and_resumes_from_the_previous_checkpoint(root, data_and_disk):
    run, disk = data_and_disk['full'], data_and_disk['disk']
    assert run['rc'] == 1
    lines = _error_lines(run['stderr'])
    assert len(lines) == 1, run['stderr'][-3000:]
    assert re.search(rf'error: cannot write {re.escape(str(disk / "iter_2.pth"))}: No space left '
                     rf'on device \([\d.]+ (bytes|KB|MB|GB) free\); the previous checkpoint '
                     rf'{re.escape(str(disk / "iter_1.pth"))} is intact', lines[0]), lines[0]
    assert [f for f in run['files'] if 'iter_' in f] == ['iter_1.pth']  # no partial file
    assert run['pointer'] == str(disk / 'iter_1.pth')
    assert _all_finite(disk / 'iter_1.pth')
    resumed = data_and_disk['resumed']
    assert resumed['rc'] == 0, resumed['stderr'][-3000:]
    assert 'resumed epoch: 0, iter: 1' in resumed['stdout']
    assert_same_training_state(root / 'ref' / f'iter_{ITERS}.pth',
                               root / 'disk_resumed' / f'iter_{ITERS}.pth')
