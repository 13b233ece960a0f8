"""AtomicCheckpointHook: the order of a save and its failures, with a stand-in runner.

The end-to-end kills, rotations and full disks through tools/train.py are in
tests/test_tools/test_train_reliability.py.
"""
import errno
import os
import uuid

import pytest

from diffir_mm.engine.checkpoint_hook import AtomicCheckpointHook
from diffir_mm.engine.errors import TrainingStopped


class _Runner:
    """What mmengine's CheckpointHook uses of a runner; ``save_checkpoint`` writes through the
    hook's file backend and records the folder as it was just before each write."""

    def __init__(self, work_dir):
        from mmengine.logging import MessageHub, MMLogger

        self.work_dir, self.iter, self.epoch = str(work_dir), 0, 0
        self.message_hub = MessageHub.get_instance(uuid.uuid4().hex)
        self.logger = MMLogger.get_instance(uuid.uuid4().hex)
        self.seen, self.fail = {}, None

    def save_checkpoint(self, out_dir, filename, file_client_args=None, backend_args=None,
                        **kwargs):
        from mmengine.fileio import get_file_backend

        path = os.path.join(out_dir, filename)
        self.seen.setdefault(filename, sorted(os.listdir(out_dir)))  # the first write
        if self.fail:
            raise self.fail
        get_file_backend(path, backend_args=backend_args).put(filename.encode(), path)


def _hook(runner, **kwargs):
    hook = AtomicCheckpointHook(interval=1, by_epoch=False, **kwargs)
    hook.before_train(runner)
    return hook


def _step(hook, runner, psnr=None):
    """As the loop does: ``after_train_iter`` saves iter_<i+1>, the iteration count moves on,
    then validation may save a best checkpoint."""
    hook._save_checkpoint(runner)
    runner.iter += 1
    if psnr is not None:
        hook._save_best_checkpoint(runner, {'psnr': psnr})


def test_old_checkpoints_are_removed_after_the_new_one_and_the_pointer(tmp_path):
    runner = _Runner(tmp_path)
    hook = _hook(runner, max_keep_ckpts=1, save_best='psnr', rule='greater')
    _step(hook, runner, psnr=1.0)
    _step(hook, runner, psnr=2.0)
    # while iter_2 and the new best were written, iter_1 and the old best were still there
    assert 'iter_1.pth' in runner.seen['iter_2.pth']
    assert 'best_psnr_iter_1.pth' in runner.seen['best_psnr_iter_2.pth']
    assert sorted(os.listdir(tmp_path)) == ['best_psnr_iter_2.pth', 'iter_2.pth',
                                            'last_checkpoint']
    assert (tmp_path / 'last_checkpoint').read_text() == str(tmp_path / 'iter_2.pth')
    assert runner.message_hub.get_info('keep_ckpt_ids') == [2]


def test_a_leftover_temporary_file_is_removed_at_the_start(tmp_path):
    stale = tmp_path / '.iter_3.pth.999999999.0123abcd.tmp'  # no such process
    stale.write_bytes(b'half')
    _hook(_Runner(tmp_path))
    assert not stale.exists()


@pytest.mark.parametrize('best', [False, True])
def test_a_full_disk_stops_with_one_line_and_keeps_the_previous_checkpoint(tmp_path, best):
    runner = _Runner(tmp_path)
    hook = _hook(runner, max_keep_ckpts=1, save_best='psnr', rule='greater')
    _step(hook, runner, psnr=1.0)
    runner.fail = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    with pytest.raises(TrainingStopped) as err:
        if best:
            runner.iter += 1
            hook._save_best_checkpoint(runner, {'psnr': 2.0})
        else:
            hook._save_checkpoint(runner)
    name = 'best_psnr_iter_2.pth' if best else 'iter_2.pth'
    text = str(err.value)
    assert text.startswith(f'cannot write {tmp_path / name}: No space left on device (')
    assert text.endswith(f' free); the previous checkpoint {tmp_path / "iter_1.pth"} is intact')
    assert sorted(os.listdir(tmp_path)) == ['best_psnr_iter_1.pth', 'iter_1.pth',
                                            'last_checkpoint']


def test_remote_out_dirs_keep_mmengine_behaviour():
    hook = AtomicCheckpointHook(interval=1, out_dir='s3://bucket/runs')
    assert not hook._atomic and hook.backend_args is None
    assert AtomicCheckpointHook(interval=1).backend_args == dict(backend='diffir_atomic_local')
