"""``diffir-restore --mask`` gives the pixels of the official inpainting predictor.

The official pipeline (``DiffIR-inpainting/bin/predict.py``, LaMa's ``evaluation/data.py``,
``configs/prediction/default.yaml``): PIL reads the image as RGB and the mask as ``'L'``, both
/ 255; ``np.pad(mode='symmetric')`` to a multiple of 8; ``mask > 0``; the network on
``cat(img * (1 - mask), mask)`` with ``x_T = torch.randn`` on the global RNG;
``mask * pred + (1 - mask) * img``; crop; ``np.clip(x * 255, 0, 255).astype('uint8')``. The
fixture ``cli_inpaint`` holds its float result around the authors' network (tiny width) and the
weights; the CLI gets the same weights as a LaMa ``.ckpt`` and the same start vector
(``--seed 0`` == ``torch.manual_seed(0)``). The image is 53 x 70 (not a multiple of 8) and the
mask holds anti-aliased grey levels and near-black colours, so padding and the hole rule both
matter.
"""
import shutil

import cv2
import numpy as np
import PIL.Image
import torch
from helpers import load_cli_fixture

from diffir_mm.cli.restore import main

#: How far two float32 implementations of the network may differ.
FLOAT_TOL = 1e-6
H, W = 53, 70


def test_cli_mask_equals_the_official_predictor(tmp_path, capsys):
    fixture = load_cli_fixture('inpaint')
    ckpt = tmp_path / 'last.ckpt'
    torch.save({'state_dict': {f'generator.{k}': v for k, v in fixture['state_dict'].items()}},
               ckpt)
    img_path = str(tmp_path / 'photo.png')
    mask_path = str(tmp_path / 'photo_mask.png')
    shutil.copyfile(fixture['photo_png'], img_path)
    shutil.copyfile(fixture['mask_png'], mask_path)
    photo = cv2.imread(img_path, cv2.IMREAD_UNCHANGED)
    mask_rgb = cv2.imread(mask_path, cv2.IMREAD_UNCHANGED)[..., ::-1]
    grey = (mask_rgb.min(axis=2) > 0) & (mask_rgb.max(axis=2) < 255)
    assert grey.sum() > 50  # the mask is not binary

    official_float = fixture['result'].numpy()  # RGB, before the uint8 conversion
    expected = cv2.cvtColor(np.clip(official_float * 255, 0, 255).astype('uint8'),
                            cv2.COLOR_RGB2BGR)  # the file the official predictor writes
    rc = main([img_path, '-o', str(tmp_path / 'out'), '--task', 'inpaint', '--checkpoint',
               str(ckpt), '--mask', mask_path, '--seed', '0', '--device', 'cpu',
               '--no-progress'])
    err = capsys.readouterr().err
    assert rc == 0, err
    assert 'not binary' in err and 'padded (symmetric)' in err
    ours = cv2.imread(str(tmp_path / 'out' / 'photo.png'), cv2.IMREAD_UNCHANGED)
    assert ours.shape == expected.shape == (H, W, 3)

    # kept pixels (luma 0, the (1, 0, 0) line included) are the input's in both
    holes = np.array(PIL.Image.open(mask_path).convert('L')) > 0
    assert not holes[4, :40].any() and holes[30, 10:60].all() and holes[grey].all()
    np.testing.assert_array_equal(ours[~holes], photo[~holes])
    np.testing.assert_array_equal(expected[~holes], ours[~holes])
    # holes: ours is round(255 x) of the official float result (equal but for values within
    # FLOAT_TOL of a rounding boundary), the official file floor(255 x): <= 1 level apart
    unit = np.clip(official_float[..., ::-1], 0, 1) * 255.0
    rounded = np.rint(unit).astype(int)
    assert ((unit[holes] > 0) & (unit[holes] < 255)).mean() > 0.2  # not all clipped
    diff = np.abs(ours.astype(int) - rounded)
    assert diff.max() <= 1
    assert np.all(np.abs(unit % 1.0 - 0.5)[diff > 0] <= FLOAT_TOL * 255.0)
    step = ours.astype(int) - expected.astype(int)
    assert set(np.unique(step[holes])) <= {0, 1}

    # the test can tell: reflect padding (the SR/deblur tests') gives other pixels
    reflected = cv2.imread(fixture['reflect_png'], cv2.IMREAD_UNCHANGED)
    assert np.abs(reflected.astype(int) - expected.astype(int))[holes].max() > 1
