"""The CLI's untiled output on a large image equals the official inference pipeline's.

The official SR inference script reads a PNG with OpenCV (BGR -> RGB, / 255), reflect-pads the LR
image on the right/bottom to a multiple of 8 (x4), runs the network once (its start vector
``x_T`` drawn with ``torch.randn`` on the global RNG), crops, clamps to [0, 1] and writes
``round(255 * x)``. Here the authors' network (``../shared/reference/official_diffir``, tiny
width) runs that pipeline; ``diffir-restore`` gets the same weights as a BasicSR file and the
same start vector (``--seed 0`` == ``torch.manual_seed(0)``). The LR image is longer than
``DEFAULT_PRIOR_MAX_SIDE``, so a prior budget would change the result.
"""
import os

import cv2
import numpy as np
import pytest
import skimage.data
import torch
import torch.nn.functional as F
from helpers import official_stage2_class, write

from diffir_mm.cli.restore import main
from diffir_mm.inference import DEFAULT_PRIOR_MAX_SIDE

#: Official constructor arguments: the released SR x4 preset at a tiny width.
TINY_SR_X4 = dict(n_encoder_res=1, inp_channels=3, out_channels=3, scale=4, dim=8,
                  num_blocks=[1, 1, 1, 1], num_refinement_blocks=1, heads=[1, 2, 4, 8],
                  ffn_expansion_factor=2.2, bias=False, LayerNorm_type='BiasFree')
#: How far two float32 implementations of the network may differ (README: < 1e-6).
FLOAT_TOL = 1e-6


def _official_class() -> type:
    try:
        return official_stage2_class('realsr')
    except FileNotFoundError as err:
        if os.environ.get('DIFFIR_ALLOW_MISSING_FIXTURES') == '1':
            pytest.skip(str(err))
        pytest.fail(f'{err} (set DIFFIR_ALLOW_MISSING_FIXTURES=1 to skip this test instead)')


def _official_pipeline(net: torch.nn.Module, path: str, seed: int):
    """``(BGR uint8 result, its float RGB values in [0, 1])`` of the official x4 inference."""
    bgr = cv2.imread(path, cv2.IMREAD_COLOR)
    img = torch.from_numpy(np.ascontiguousarray(bgr[..., ::-1])).permute(2, 0, 1).float() / 255.
    img = img[None]
    h, w = img.shape[-2:]
    img = F.pad(img, (0, (-w) % 8, 0, (-h) % 8), mode='reflect')
    torch.manual_seed(seed)
    with torch.no_grad():
        out = net(img)[..., :h * 4, :w * 4]
    unit = out[0].clamp(0, 1).permute(1, 2, 0).numpy()
    rgb = (unit * 255.0).round().astype(np.uint8)
    return np.ascontiguousarray(rgb[..., ::-1]), unit


def test_untiled_cli_on_a_large_image_equals_the_official_inference(tmp_path, capsys):
    torch.manual_seed(0)
    official = _official_class()(**TINY_SR_X4).eval()
    ckpt = tmp_path / 'DiffIRS2-GAN.pth'
    torch.save({'params_ema': official.state_dict()}, ckpt)
    photo = skimage.data.astronaut()[..., ::-1]  # BGR for cv2
    lr = cv2.resize(np.ascontiguousarray(photo), (1100, 36), interpolation=cv2.INTER_AREA)
    assert max(lr.shape[:2]) > DEFAULT_PRIOR_MAX_SIDE  # x4: the prior network sees the LR grid
    path = write(tmp_path / 'wide.png', lr)

    expected, official_unit = _official_pipeline(official, path, seed=0)
    rc = main([path, '-o', str(tmp_path / 'out'), '--task', 'sr', '--checkpoint', str(ckpt),
               '--seed', '0', '--device', 'cpu', '--no-progress', '-q'])
    assert rc == 0, capsys.readouterr().err
    ours = cv2.imread(str(tmp_path / 'out' / 'wide.png'), cv2.IMREAD_UNCHANGED)
    assert ours.shape == expected.shape == (144, 4400, 3)
    # Both are float32 computations of the same function (they agree to FLOAT_TOL before the
    # conversion), so the uint8 values are equal except where the official value lies within
    # FLOAT_TOL of a rounding boundary k + 0.5.
    diff = np.abs(ours.astype(int) - expected.astype(int))
    assert diff.max() <= 1
    boundary = np.abs((official_unit[..., ::-1] * 255.0) % 1.0 - 0.5)[diff > 0]
    assert np.all(boundary <= FLOAT_TOL * 255.0), boundary.max()
    assert diff.mean() < 1e-4

    # the test can tell: a prior budget under the image size changes the pixels
    rc = main([path, '-o', str(tmp_path / 'budget'), '--task', 'sr', '--checkpoint', str(ckpt),
               '--seed', '0', '--device', 'cpu', '--no-progress', '-q',
               '--prior-max-side', str(DEFAULT_PRIOR_MAX_SIDE)])
    assert rc == 0
    budgeted = cv2.imread(str(tmp_path / 'budget' / 'wide.png'), cv2.IMREAD_UNCHANGED)
    assert np.abs(budgeted.astype(int) - expected.astype(int)).max() > 0
