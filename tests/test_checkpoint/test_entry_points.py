"""An unsafe pickle is refused, in one line, by every entry point that reads checkpoints.

The payload's ``__reduce__`` calls ``os.system`` (creating a marker file); a plain unpickler
runs it. Every diffir_mm entry point must refuse the file without running it and say so in one
line naming the refused global.
"""
import importlib.util
import os
import re

import cv2
import pytest
import torch
from helpers import REPO_ROOT

import diffir_mm.registration  # noqa: F401  (mmengine's local loader, the inferencer)
from diffir_mm.checkpoint import (CheckpointMismatchError, discriminator_state, load_file,
                                  load_official, load_state_dict_file, read_network)

REFUSED = r'cannot read checkpoint .*evil\.pth: it refers to (posix|nt)\.system'


class _Payload:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f'touch {self.marker}',)


@pytest.fixture
def evil(tmp_path):
    """``(path of the unsafe checkpoint, marker file its payload would create)``."""
    marker = tmp_path / 'pwned'
    path = tmp_path / 'evil.pth'
    torch.save({'state_dict': {'generator.w': torch.zeros(1)}, 'x': _Payload(marker)}, path)
    yield path, marker
    assert not marker.exists(), 'the payload ran'


def test_the_payload_is_live(tmp_path):
    """Without the safe unpickler the payload does run (so the refusals below are real)."""
    marker = tmp_path / 'ran'
    path = tmp_path / 'live.pth'
    torch.save({'x': _Payload(marker)}, path)
    torch.load(path, weights_only=False)
    assert marker.exists()


def _one_line(err):
    text = str(err)
    assert '\n' not in text and 'weights_only' not in text, text
    return text


@pytest.mark.parametrize('read', [
    load_file, read_network, discriminator_state,
    lambda path: load_official(path, task='deblur', stage=2),
    lambda path: load_state_dict_file(path, 'VGG19 weights'),
], ids=['load_file', 'read_network', 'discriminator_state', 'load_official',
        'load_state_dict_file'])
def test_package_functions_refuse(evil, read):
    with pytest.raises(CheckpointMismatchError, match=REFUSED) as err:
        read(evil[0])
    _one_line(err.value)


def test_editors_refuse(evil):
    from diffir_mm.checkpoint import Layout
    from diffir_mm.models.editors.common import load_network_checkpoint

    with pytest.raises(CheckpointMismatchError, match=REFUSED) as err:
        load_network_checkpoint(str(evil[0]), stage=1, expect=Layout(task='deblur', scale=1))
    _one_line(err.value)


def test_mmengine_loader_refuses(evil):
    """``load_from``, ``--resume``, tools/test.py and MMagic's inferencer read through this."""
    from mmengine.runner.checkpoint import _load_checkpoint

    with pytest.raises(CheckpointMismatchError, match=REFUSED) as err:
        _load_checkpoint(str(evil[0]), map_location='cpu')
    _one_line(err.value)


def test_inferencer_refuses(evil):
    from diffir_mm.apis import prepare_checkpoint

    config = os.path.join(REPO_ROOT, 'configs', 'diffir_deblur_s2.py')
    with pytest.raises(CheckpointMismatchError, match=REFUSED) as err:
        prepare_checkpoint(str(evil[0]), config)
    _one_line(err.value)


def test_cli_refuses(evil, tmp_path, capsys):
    from diffir_mm.cli.restore import main

    img = tmp_path / 'in.png'
    cv2.imwrite(str(img), (torch.rand(16, 16, 3) * 255).byte().numpy())
    assert main([str(img), '-o', str(tmp_path / 'out'), '--checkpoint', str(evil[0])]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and re.match(f'error: {REFUSED}', err[0]), err
    assert not (tmp_path / 'out').exists() or not os.listdir(tmp_path / 'out')


def test_converter_refuses(evil, tmp_path, capsys):
    spec = importlib.util.spec_from_file_location(
        '_convert_official_ckpt', os.path.join(REPO_ROOT, 'tools', 'convert_official_ckpt.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)

    dst = tmp_path / 'out.pth'
    assert tool.main([str(evil[0]), str(dst), '--task', 'deblur', '--stage', '2']) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and re.match(f'error: {REFUSED}', err[0]), err
    assert not dst.exists()
