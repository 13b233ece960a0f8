"""The CLI's untiled output on a large image equals the official inference pipeline's.

The official SR inference script reads a PNG with OpenCV (BGR -> RGB, / 255), reflect-pads the LR
image on the right/bottom to a multiple of 8 (x4), runs the network once (its start vector
``x_T`` drawn with ``torch.randn`` on the global RNG), crops, clamps to [0, 1] and writes
``round(255 * x)``. The fixture ``cli_sr_x4`` holds what that pipeline gives around the authors'
network (tiny width, float32 like the script) on a 36 x 1100 image, and the weights;
``diffir-restore`` gets the same weights as a BasicSR file and the same start vector
(``--seed 0`` == ``torch.manual_seed(0)``). The LR image is longer than
``DEFAULT_PRIOR_MAX_SIDE``, so a prior budget would change the result.

The 144 x 4400 official result is stored as a SHA-256 per row with the pixels whose 255-scaled
value lies within ``near_half`` of a rounding boundary left out, and those pixels' values: our
output must equal it exactly everywhere else.
"""
import shutil
from typing import Tuple

import cv2
import numpy as np
import torch
from helpers import load_cli_fixture, row_digests

from diffir_mm.cli.restore import main
from diffir_mm.inference import DEFAULT_PRIOR_MAX_SIDE

#: How far two float32 implementations of the network may differ.
FLOAT_TOL = 1e-6


def _differs_from_official(image: np.ndarray, fixture: dict) -> Tuple[np.ndarray, np.ndarray]:
    """``(rows whose other pixels differ, |image - official| at the stored pixels)``."""
    near = fixture['near_index'].long().numpy()
    rows = np.array(row_digests(image, near)) != np.array(fixture['row_digests'])
    official = np.rint(fixture['near_value'].double().numpy())
    return rows, np.abs(image.reshape(-1)[near].astype(int) - official.astype(int))


def test_untiled_cli_on_a_large_image_equals_the_official_inference(tmp_path, capsys):
    fixture = load_cli_fixture('sr_x4')
    # the stored pixels cover every value two float32 computations may round differently
    assert fixture['near_half'] >= FLOAT_TOL * 255.0
    ckpt = tmp_path / 'DiffIRS2-GAN.pth'
    torch.save({'params_ema': fixture['state_dict']}, ckpt)
    path = str(tmp_path / 'wide.png')
    shutil.copyfile(fixture['lr_png'], path)
    lr = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    assert max(lr.shape[:2]) > DEFAULT_PRIOR_MAX_SIDE  # x4: the prior network sees the LR grid

    rc = main([path, '-o', str(tmp_path / 'out'), '--task', 'sr', '--checkpoint', str(ckpt),
               '--seed', '0', '--device', 'cpu', '--no-progress', '-q'])
    assert rc == 0, capsys.readouterr().err
    ours = cv2.imread(str(tmp_path / 'out' / 'wide.png'), cv2.IMREAD_UNCHANGED)
    assert ours.shape == tuple(fixture['shape']) == (144, 4400, 3)
    # Both are float32 computations of the same function (they agree to FLOAT_TOL before the
    # conversion), so the uint8 values are equal except where the official value lies within
    # FLOAT_TOL of a rounding boundary k + 0.5.
    rows, diff = _differs_from_official(ours, fixture)
    assert not rows.any(), f'rows {np.flatnonzero(rows)[:10]} differ from the official result'
    assert diff.max() <= 1
    boundary = np.abs(fixture['near_value'].double().numpy() % 1.0 - 0.5)[diff > 0]
    assert np.all(boundary <= FLOAT_TOL * 255.0), boundary.max()
    assert diff.sum() / ours.size < 1e-4

    # the test can tell: a prior budget under the image size changes the pixels
    rc = main([path, '-o', str(tmp_path / 'budget'), '--task', 'sr', '--checkpoint', str(ckpt),
               '--seed', '0', '--device', 'cpu', '--no-progress', '-q',
               '--prior-max-side', str(DEFAULT_PRIOR_MAX_SIDE)])
    assert rc == 0
    budgeted = cv2.imread(str(tmp_path / 'budget' / 'wide.png'), cv2.IMREAD_UNCHANGED)
    rows, diff = _differs_from_official(budgeted, fixture)
    assert rows.any() or diff.max() > 0
