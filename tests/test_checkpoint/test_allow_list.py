"""The allow-list of mmengine training checkpoints: by name, restricted getattr, mmengine-free."""
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch
from helpers import REPO_ROOT
from mmengine.logging import HistoryBuffer, MessageHub

from diffir_mm.checkpoint import (MMENGINE_CHECKPOINT_GLOBALS, CheckpointMismatchError,
                                  HistoryBufferState, load_file, read_checkpoint)
from diffir_mm.checkpoint.allow_list import checkpoint_globals, restricted_getattr


@pytest.fixture
def hub_file(tmp_path):
    """A checkpoint with the message hub of a training run (HistoryBuffers, numpy values)."""
    hub = MessageHub.get_instance('diffir_allow_list_test')
    hub.update_scalar('train/loss', 0.5)
    hub.update_scalar('val/PSNR', np.float64(27.5))
    hub.update_scalar('val/SSIM', np.float32(0.75))
    hub.update_info('best_score', np.float64(27.5))
    path = tmp_path / 'hub.pth'
    torch.save(dict(message_hub=hub.state_dict(), meta=dict(iter=3),
                    state_dict={'generator.w': torch.ones(2)}), path)
    return path


def test_every_name_has_an_entry():
    assert [name for _, name in checkpoint_globals()] == list(MMENGINE_CHECKPOINT_GLOBALS)
    assert [name for _, name in checkpoint_globals(mmengine_objects=True)] == \
        list(MMENGINE_CHECKPOINT_GLOBALS)


def test_mmengine_objects_rebuild_the_real_history_buffers(hub_file):
    hub = load_file(hub_file, mmengine_objects=True)['message_hub']
    assert isinstance(hub['log_scalars']['val/PSNR'], HistoryBuffer)
    assert hub['log_scalars']['val/PSNR'].current() == 27.5
    assert hub['log_scalars']['val/SSIM'].current() == pytest.approx(0.75)
    assert hub['runtime_info']['best_score'] == 27.5


def test_weights_reading_uses_a_stand_in(hub_file):
    ckpt = read_checkpoint(hub_file)
    buffer = ckpt['message_hub']['log_scalars']['train/loss']
    assert isinstance(buffer, HistoryBufferState) and buffer.state is not None
    assert torch.equal(ckpt['state_dict']['generator.w'], torch.ones(2))


def test_reading_needs_no_mm_package(hub_file):
    """The same file reads in a process where mmagic / mmcv / mmengine cannot be imported."""
    block = ''.join(f'sys.modules[{n!r}] = None\n' for n in ('mmagic', 'mmcv', 'mmengine'))
    code = (f'import sys\n{block}from diffir_mm.checkpoint import read_checkpoint\n'
            f'ckpt = read_checkpoint({str(hub_file)!r})\n'
            "print(type(ckpt['message_hub']['log_scalars']['train/loss']).__name__, "
            "ckpt['meta']['iter'])\n")
    proc = subprocess.run([sys.executable, '-c', code], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=300,
                          env=dict(os.environ, PYTHONPATH=REPO_ROOT))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ['HistoryBufferState', '3']


def test_a_process_wide_registration_wins(hub_file):
    """Someone else's allow-listed class keeps its name: the real HistoryBuffer is rebuilt."""
    with torch.serialization.safe_globals([HistoryBuffer]):
        buffer = read_checkpoint(hub_file)['message_hub']['log_scalars']['train/loss']
        assert isinstance(buffer, HistoryBuffer)
        assert HistoryBuffer in torch.serialization.get_safe_globals()  # still registered


def test_getattr_resolves_statistics_only():
    assert restricted_getattr(HistoryBuffer, 'mean') is HistoryBuffer.mean
    assert restricted_getattr(HistoryBufferState, 'mean') == 'HistoryBuffer.mean'
    for obj, name in ((HistoryBuffer, '__init__'), (HistoryBuffer, 'update'), (os, 'system'),
                      (HistoryBufferState, '__class__')):
        with pytest.raises(pickle.UnpicklingError, match='not allowed'):
            restricted_getattr(obj, name)


class _FetchesAttribute:
    """Pickles as ``getattr(HistoryBuffer, '__init__')``: a lookup the allow-list refuses."""

    def __reduce__(self):
        return getattr, (HistoryBuffer, '__init__')


def test_a_checkpoint_fetching_other_attributes_is_refused(tmp_path):
    path = tmp_path / 'getattr.pth'
    torch.save({'x': _FetchesAttribute()}, path)
    for mmengine_objects in (False, True):
        with pytest.raises(CheckpointMismatchError, match='is not allowed') as err:
            load_file(path, mmengine_objects=mmengine_objects)
        assert '\n' not in str(err.value)
