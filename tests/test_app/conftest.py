"""Fixtures of the web-app tests: tiny random checkpoints and a photo."""
import numpy as np
import pytest
import torch
from helpers import official_checkpoint, sample_image, tiny_net, write

# Tiny models gain nothing from threads; the CLI runs of these tests use one thread too, so the
# app's output and the CLI's are computed alike (float sums may differ with the thread count).
torch.set_num_threads(1)


@pytest.fixture(scope='session')
def app_ckpts(tmp_path_factory):
    """Tiny random checkpoints (official layout): ``deblur.pth``, ``sr_x2.pth``, ``inpaint.pth``."""
    folder = tmp_path_factory.mktemp('app_ckpts')
    for preset in ('deblur', 'sr_x2', 'inpaint'):
        torch.save(official_checkpoint(tiny_net(preset)), folder / f'{preset}.pth')
    return folder


@pytest.fixture(scope='session')
def photo(tmp_path_factory):
    """scikit-image's astronaut, 64x64, as an 8-bit RGB PNG."""
    path = tmp_path_factory.mktemp('app_photo') / 'astronaut.png'
    return write(path, sample_image('astronaut', 64)[..., ::-1])


@pytest.fixture
def rng():
    return np.random.default_rng(0)
