"""``diffir-restore --mask`` gives the pixels of the official inpainting predictor.

The official pipeline (``DiffIR-inpainting/bin/predict.py``, LaMa's ``evaluation/data.py``,
``configs/prediction/default.yaml``) is re-enacted here step by step around the authors' network
(``../shared/reference/official_diffir/inpainting``, tiny width): PIL reads the image as RGB and
the mask as ``'L'``, both / 255; ``np.pad(mode='symmetric')`` to a multiple of 8; ``mask > 0``;
the network on ``cat(img * (1 - mask), mask)`` with ``x_T = torch.randn`` on the global RNG;
``mask * pred + (1 - mask) * img``; crop; ``np.clip(x * 255, 0, 255).astype('uint8')``. The CLI
gets the same weights as a LaMa ``.ckpt`` and the same start vector (``--seed 0`` ==
``torch.manual_seed(0)``). The image is 53 x 70 (not a multiple of 8) and the mask holds
anti-aliased grey levels and near-black colours, so padding and the hole rule both matter.
"""
import os

import cv2
import numpy as np
import PIL.Image
import pytest
import skimage.data
import torch
from helpers import official_stage2_class, write

from diffir_mm.cli.restore import main

#: Official constructor arguments: the released inpainting preset at a tiny width.
TINY_INPAINT = dict(n_encoder_res=1, inp_channels=4, out_channels=3, dim=8,
                    num_blocks=[1, 1, 1, 1], num_refinement_blocks=0, heads=[1, 2, 4, 8],
                    ffn_expansion_factor=1.8, bias=False, LayerNorm_type='WithBias')
#: How far two float32 implementations of the network may differ (README: < 1e-6).
FLOAT_TOL = 1e-6
H, W = 53, 70


def _official_class() -> type:
    try:
        return official_stage2_class('inpainting')
    except FileNotFoundError as err:
        if os.environ.get('DIFFIR_ALLOW_MISSING_FIXTURES') == '1':
            pytest.skip(str(err))
        pytest.fail(f'{err} (set DIFFIR_ALLOW_MISSING_FIXTURES=1 to skip this test instead)')


def _load(path: str, mode: str) -> np.ndarray:
    """LaMa's ``load_image``: PIL ``convert(mode)``, CHW, float32 / 255."""
    img = np.array(PIL.Image.open(path).convert(mode))
    if img.ndim == 3:
        img = np.transpose(img, (2, 0, 1))
    return img.astype('float32') / 255


def _pad8(img: np.ndarray, mode: str = 'symmetric') -> np.ndarray:
    """LaMa's ``pad_img_to_modulo(img, 8)`` (its mode is 'symmetric')."""
    _, h, w = img.shape
    return np.pad(img, ((0, 0), (0, (-h) % 8), (0, (-w) % 8)), mode=mode)


def _official_predict(net, img_path: str, mask_path: str, seed: int, pad_mode='symmetric'):
    """``(written BGR uint8, float RGB result before the uint8 conversion)``."""
    image = torch.from_numpy(_pad8(_load(img_path, 'RGB'), pad_mode))[None]
    mask = torch.from_numpy(_pad8(_load(mask_path, 'L')[None], pad_mode))[None]
    mask = (mask > 0) * 1
    masked = torch.cat([image * (1 - mask), mask], dim=1)
    torch.manual_seed(seed)
    with torch.no_grad():
        pred, _ = net(masked)
    inpainted = mask * pred + (1 - mask) * image
    res = inpainted[0].permute(1, 2, 0).numpy()[:H, :W]
    written = np.clip(res * 255, 0, 255).astype('uint8')
    return cv2.cvtColor(written, cv2.COLOR_RGB2BGR), res


def _mask_rgb() -> np.ndarray:
    """A colour mask (RGB): a hole with blurred (grey) edges touching the bottom-right corner,
    a line of (1, 0, 0) (luma 0: kept) and one of (0, 0, 5) (luma 1: a hole)."""
    mask = np.zeros((H, W), np.float32)
    mask[10:25, 8:30] = 1
    mask[38:, 50:] = 1
    mask = cv2.GaussianBlur(mask, (5, 5), 1.0)
    rgb = np.repeat(np.round(mask * 255).astype(np.uint8)[..., None], 3, axis=2)
    rgb[4, :40] = (1, 0, 0)
    rgb[30, 10:60] = (0, 0, 5)
    return rgb


def test_cli_mask_equals_the_official_predictor(tmp_path, capsys):
    torch.manual_seed(0)
    official = _official_class()(**TINY_INPAINT).eval()
    with torch.no_grad():  # default init gives a near-constant output: make it input-driven
        for name, param in official.named_parameters():
            if name.startswith('G.') and param.dim() > 1:
                param.mul_(2.0)
    ckpt = tmp_path / 'last.ckpt'
    torch.save({'state_dict': {f'generator.{k}': v for k, v in official.state_dict().items()}},
               ckpt)
    photo = cv2.resize(skimage.data.astronaut(), (W, H), interpolation=cv2.INTER_AREA)
    img_path = write(tmp_path / 'photo.png', np.ascontiguousarray(photo[..., ::-1]))
    mask_rgb = _mask_rgb()
    mask_path = write(tmp_path / 'photo_mask.png', np.ascontiguousarray(mask_rgb[..., ::-1]))
    grey = (mask_rgb.min(axis=2) > 0) & (mask_rgb.max(axis=2) < 255)
    assert grey.sum() > 50  # the mask is not binary

    expected, official_float = _official_predict(official, img_path, mask_path, seed=0)
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
    np.testing.assert_array_equal(ours[~holes], photo[..., ::-1][~holes])
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
    reflected, _ = _official_predict(official, img_path, mask_path, seed=0, pad_mode='reflect')
    assert np.abs(reflected.astype(int) - expected.astype(int))[holes].max() > 1
