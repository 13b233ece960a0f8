"""Packed training-checkpoint entries: tensor-only readers open the file, ours reads it back
unchanged, and a packed entry is as safe as the file around it."""
import copy
import io
import itertools
import os
import pickle
from collections import OrderedDict

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer, MessageHub

from diffir_mm.checkpoint import (CheckpointMismatchError, HistoryBufferState, load_file,
                                  pack_entries)
from diffir_mm.checkpoint.packing import PACKED_KEY, is_plain
from diffir_mm.engine.random_state_hook import get_rng_state

spandrel = pytest.importorskip('spandrel', reason='needs spandrel (requirements/tests.txt)')
from spandrel.__helpers.unpickler import RestrictedUnpickle  # noqa: E402


_HUBS = itertools.count()


def _training_checkpoint() -> dict:
    """What mmengine's runner and our hooks put in an ``iter_N.pth``."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-3)
    net(torch.rand(2, 3, 8, 8)).mean().backward()
    optimizer.step()
    hub = MessageHub(f'diffir_packing_test_{next(_HUBS)}')
    for value in (0.5, 0.25):
        hub.update_scalar('train/loss', value)
    hub.update_scalar('val/PSNR', np.float64(27.5))
    hub.update_info('best_score', np.float64(27.5))
    hub.update_info('iter', 7)
    return dict(meta=dict(iter=7, seed=0, cfg='model = dict()'), state_dict=net.state_dict(),
                optimizer=optimizer.state_dict(), message_hub=hub.state_dict(),
                param_schedulers=[dict(base_lrs=[1e-3], last_epoch=7)],
                rng_state=dict(states=[dict(state=get_rng_state(), model={})]))


def _saved(checkpoint: dict, path) -> str:
    torch.save(checkpoint, path)
    return str(path)


def test_only_what_tensor_readers_refuse_is_packed():
    ckpt = _training_checkpoint()
    plain = {k: v for k, v in ckpt.items() if k != 'message_hub'}
    assert pack_entries(ckpt) == ['message_hub']  # rng_state is tensors and numbers
    assert all(ckpt[k] is v for k, v in plain.items())  # weights, optimizer, RNG, meta untouched
    assert pack_entries(ckpt) == []  # packing twice changes nothing


def test_tensor_only_readers_open_a_packed_checkpoint(tmp_path):
    ckpt = _training_checkpoint()
    unpacked = _saved(ckpt, tmp_path / 'unpacked.pth')
    pack_entries(ckpt)
    packed = _saved(ckpt, tmp_path / 'packed.pth')
    for path, opens in ((unpacked, False), (packed, True)):
        for reader in (dict(pickle_module=RestrictedUnpickle), dict(weights_only=True)):
            if opens:  # spandrel's reader; torch's weights-only reader without our allow-list
                state = torch.load(path, **reader)['state_dict']
                assert torch.equal(state['1.running_mean'], ckpt['state_dict']['1.running_mean'])
            else:
                with pytest.raises(pickle.UnpicklingError):
                    torch.load(path, **reader)


def test_our_reader_gets_the_entries_back(tmp_path):
    original = _training_checkpoint()
    packed = copy.deepcopy(original)
    pack_entries(packed)
    path = _saved(packed, tmp_path / 'iter_7.pth')
    back = load_file(path, mmengine_objects=True)
    assert set(back) == set(original)
    hub, hub_back = original['message_hub'], back['message_hub']
    assert hub_back['runtime_info'] == hub['runtime_info']
    assert isinstance(hub_back['runtime_info']['best_score'], np.float64)
    for name, buffer in hub['log_scalars'].items():
        again = hub_back['log_scalars'][name]
        assert isinstance(again, HistoryBuffer)
        assert all(np.array_equal(a, b) for a, b in zip(again.data, buffer.data))
    rng, rng_back = (c['rng_state']['states'][0]['state'] for c in (original, back))
    assert torch.equal(rng_back['torch'], rng['torch']) and rng_back['torch'].dtype == torch.uint8
    assert torch.equal(rng_back['numpy']['keys'], rng['numpy']['keys'])
    assert rng_back['python'] == rng['python']
    assert torch.equal(back['optimizer']['state'][0]['exp_avg'],
                       original['optimizer']['state'][0]['exp_avg'])
    # weights readers get the mmengine-free stand-in, as for an unpacked file
    weights_view = load_file(path)['message_hub']['log_scalars']['train/loss']
    assert isinstance(weights_view, HistoryBufferState)


class _Payload:
    def __reduce__(self):
        return os.system, ('echo owned > /dev/null',)


def test_a_packed_payload_is_refused(tmp_path):
    """The packed bytes go through the same weights-only reader as the file."""
    ckpt = {'state_dict': {'w': torch.ones(1)}, 'message_hub': _Payload()}
    pack_entries(ckpt)
    path = _saved(ckpt, tmp_path / 'evil.pth')
    torch.load(path, pickle_module=RestrictedUnpickle)  # the outer file alone is harmless
    with pytest.raises(CheckpointMismatchError, match=r'posix\.system|os\.system') as err:
        load_file(path)
    assert '\n' not in str(err.value)


def test_damaged_packing_is_one_line(tmp_path):
    ckpt = _training_checkpoint()
    pack_entries(ckpt)
    ckpt['message_hub']['num_bytes'] += 4 * ckpt['message_hub']['data'].numel()
    with pytest.raises(CheckpointMismatchError, match="entry 'message_hub' is cut short"):
        load_file(_saved(ckpt, tmp_path / 'short.pth'))
    ckpt['message_hub'][PACKED_KEY] = 99
    with pytest.raises(CheckpointMismatchError, match='newer diffir_mm'):
        load_file(_saved(ckpt, tmp_path / 'newer.pth'))


@pytest.mark.parametrize('value, plain', [
    (OrderedDict(a=torch.zeros(2, dtype=torch.bfloat16)), True),
    ([1, 2.0, 'x', None, True, (torch.zeros(1, dtype=torch.int32),)], True),
    (torch.zeros(2, dtype=torch.uint8), True),
    (torch.zeros(2, dtype=torch.bool), True),
    (torch.zeros(2, dtype=torch.float8_e4m3fn), False),
    (torch.nn.Parameter(torch.zeros(2)), False),
    (np.zeros(2), False),
    (np.float64(1.0), False),
    (b'bytes', False),
    ({1, 2}, False),
])
def test_plain_is_what_spandrel_reads(value, plain):
    assert is_plain(value) is plain
    buffer = io.BytesIO()
    torch.save({'v': value}, buffer)
    buffer.seek(0)
    if plain:
        torch.load(buffer, pickle_module=RestrictedUnpickle)
    else:
        with pytest.raises(pickle.UnpicklingError):
            torch.load(buffer, pickle_module=RestrictedUnpickle)
