"""Fixtures of the inference tests."""
import numpy as np
import pytest
import torch
from helpers import mmengine_checkpoint, official_checkpoint, tiny_net

# Tiny models gain nothing from threads, and OpenMP spin-waits make oversubscribed CPUs (other
# jobs on the same cores) tens of times slower.
torch.set_num_threads(1)


@pytest.fixture(scope='session')
def ckpt_dir(tmp_path_factory):
    """Checkpoint files of tiny random models: deblur / sr_x2 / sr_x4 / inpaint (official layout)
    and a deblur one in our mmengine layout (EMA weights = ``tiny_net('deblur')``)."""
    d = tmp_path_factory.mktemp('ckpts')
    for preset in ('deblur', 'sr_x2', 'sr_x4', 'inpaint'):
        torch.save(official_checkpoint(tiny_net(preset)), d / f'{preset}.pth')
    torch.save(mmengine_checkpoint(tiny_net('deblur', 1), tiny_net('deblur')),
               d / 'deblur_ours.pth')
    torch.save({'params': {'foo': torch.zeros(1)}}, d / 'not_diffir.pth')
    (d / 'garbage.pth').write_bytes(b'not a checkpoint')
    return d


@pytest.fixture
def rng():
    return np.random.default_rng(0)
