"""write_checkpoint / save_file: our mmengine layout as .pth or .safetensors, never overwriting."""
import os

import pytest
import torch
from helpers import TINY, official_checkpoint, tiny_net

from diffir_mm.checkpoint import (load_file, load_official, read_checkpoint, read_components,
                                  save_file, write_checkpoint)


@pytest.mark.parametrize('name', ['converted.pth', 'converted.safetensors'])
def test_round_trip(tmp_path, name):
    net = tiny_net('deblur')
    components = read_components(official_checkpoint(net))
    path = tmp_path / name
    written = write_checkpoint(path, components, dict(task='deblur', arch=dict(TINY)))
    back = read_checkpoint(path)
    assert back['meta']['diffir_mm']['arch'] == dict(TINY)
    assert back['state_dict'].keys() == written['state_dict'].keys()
    assert all(torch.equal(v, written['state_dict'][k]) for k, v in back['state_dict'].items())
    loaded = load_official(path, task='deblur', stage=2, **TINY, num_refinement_blocks=1)
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        a = net(x, generator=torch.Generator().manual_seed(0))
        b = loaded(x, generator=torch.Generator().manual_seed(0))
    assert torch.equal(a, b)
    assert os.listdir(tmp_path) == [name]  # no temporary file left


def test_existing_files_are_kept(tmp_path):
    path = tmp_path / 'mine.pth'
    path.write_bytes(b'keep')
    components = read_components(official_checkpoint(tiny_net('deblur')))
    with pytest.raises(FileExistsError, match='not overwritten'):
        write_checkpoint(path, components)
    with pytest.raises(FileExistsError):
        save_file({'w': torch.zeros(1)}, path)
    assert path.read_bytes() == b'keep'
    save_file({'w': torch.zeros(1)}, path, overwrite=True)
    assert torch.equal(load_file(path)['w'], torch.zeros(1))


def test_safetensors_holds_tensors_only(tmp_path):
    with pytest.raises(ValueError, match='tensors only'):
        save_file({'w': torch.zeros(1), 'step': 3}, tmp_path / 'x.safetensors')
    assert not os.listdir(tmp_path)
