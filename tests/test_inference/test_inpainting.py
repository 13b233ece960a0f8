"""Inpainting inference: the official hole rule and padding, and bad masks in Restorer and CLI."""
import numpy as np
import PIL.Image
import pytest
import torch
from helpers import tiny_net, write

from diffir_mm.cli.restore import main
from diffir_mm.inference import Restorer
from diffir_mm.inference.inpainting import hole_mask, pad_symmetric


@pytest.mark.parametrize('h,w', [(5, 7), (8, 3), (2, 1), (16, 16)])
def test_pad_symmetric_is_numpy_symmetric(h, w):
    x = torch.arange(2 * h * w, dtype=torch.float32).view(1, 2, h, w)
    ref = np.pad(x.numpy(), ((0, 0), (0, 0), (0, (-h) % 8), (0, (-w) % 8)), mode='symmetric')
    np.testing.assert_array_equal(pad_symmetric(x, 8).numpy(), ref)


@pytest.mark.parametrize('mode,channels', [('RGB', 3), ('RGBA', 4), ('LA', 2), ('L', 1)])
def test_hole_mask_is_pil_luma_above_zero(mode, channels):
    rng = np.random.default_rng(1)
    # small values, where PIL's rounding decides: (1, 0, 0) has luma 0, (0, 0, 5) luma 1
    arr = rng.integers(0, 8, (40, 50, channels), dtype=np.uint8)
    pil = PIL.Image.fromarray(arr[..., 0] if channels == 1 else arr, mode)
    expected = np.array(pil.convert('L')) > 0
    assert 0 < expected.mean() < 1
    np.testing.assert_array_equal(hole_mask(arr if channels > 1 else arr[..., 0]), expected)
    if channels == 3:  # the RGB rule differs from 'any channel non-zero'
        assert (hole_mask(arr) != (arr.max(axis=2) > 0)).any()


def test_hole_mask_rejects_odd_shapes():
    with pytest.raises(ValueError, match='a mask must be'):
        hole_mask(np.zeros((4, 4, 5)))


def _img(h=24, w=32):
    return np.random.default_rng(0).random((h, w, 3), dtype=np.float32)


def test_restorer_non_binary_mask_every_nonzero_value_is_a_hole():
    r = Restorer(tiny_net('inpaint'), device='cpu')
    img = _img()
    soft = np.zeros((24, 32), np.float32)
    soft[4:12, 4:20] = 0.01  # a faint (anti-aliased) value is a hole, as in the official rule
    binary = (soft > 0).astype(np.uint8) * 255
    out_soft = r.restore(img, mask=soft)
    np.testing.assert_array_equal(out_soft, r.restore(img, mask=binary))
    assert np.abs(out_soft[soft > 0] - img[soft > 0]).max() > 0
    # the same holds on tensors
    t = torch.from_numpy(img).permute(2, 0, 1)[None]
    np.testing.assert_array_equal(
        r.restore_tensor(t, mask=torch.from_numpy(soft)[None, None]).numpy(),
        torch.from_numpy(out_soft).permute(2, 0, 1)[None].numpy())


@pytest.mark.parametrize('mask,message', [
    (np.zeros((24, 31), np.float32), r'the mask is 31x24 \(WxH\), the image 32x24'),
    (None, 'inpainting needs a mask'),
    (np.zeros((24, 32, 5), np.float32), 'a mask must be'),
])
def test_restorer_bad_masks_one_line(mask, message):
    r = Restorer(tiny_net('inpaint'), device='cpu')
    with pytest.raises(ValueError, match=message) as err:
        r.restore(_img(), mask=mask)
    assert '\n' not in str(err.value)


def test_restorer_tensor_mask_of_another_size_and_mask_on_other_tasks():
    r = Restorer(tiny_net('inpaint'), device='cpu')
    x = torch.rand(2, 3, 16, 16)
    with pytest.raises(ValueError, match='the mask is 8x16'):
        r.restore_tensor(x, mask=torch.ones(2, 1, 16, 8))
    with pytest.raises(ValueError, match='a mask batch must be'):
        r.restore_tensor(x, mask=torch.ones(3, 1, 16, 16))
    with pytest.raises(ValueError, match='only applies to inpainting'):
        Restorer(tiny_net('deblur'), device='cpu').restore_tensor(x, mask=torch.ones(16, 16))


def _lines(err, kind):
    return [ln for ln in err.splitlines() if ln.startswith(f'{kind}:')]


def test_cli_mask_of_another_size_and_missing_mask_files(tmp_path, ckpt_dir, capsys):
    rng = np.random.default_rng(0)
    img = write(tmp_path / 'a.png', rng.integers(0, 256, (20, 24, 3), dtype=np.uint8))
    small = write(tmp_path / 'm.png', np.full((20, 16), 255, np.uint8))
    ckpt = str(ckpt_dir / 'inpaint.pth')
    rc = main([img, '-o', str(tmp_path / 'out'), '--checkpoint', ckpt, '--mask', small])
    err = capsys.readouterr().err
    assert rc == 1
    errors = _lines(err, 'error')
    assert len(errors) == 1 and 'm.png is 16x20, the image 24x20' in errors[0]
    assert not (tmp_path / 'out' / 'a.png').exists()
    for flag, message in [('--mask', 'no such file'), ('--mask-dir', 'no such folder')]:
        rc = main([img, '-o', str(tmp_path / 'out'), '--checkpoint', ckpt, flag,
                   str(tmp_path / 'missing')])
        err = capsys.readouterr().err
        assert rc == 2 and len(_lines(err, 'error')) == 1 and message in err


def test_cli_non_binary_mask_note_and_conversion(tmp_path, ckpt_dir, capsys):
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    path = write(tmp_path / 'a.png', img)
    soft = np.zeros((16, 16), np.uint8)
    soft[4:10, 2:12] = 3
    soft[6:8, 4:8] = 255
    binary = (soft > 0).astype(np.uint8) * 255
    ckpt = str(ckpt_dir / 'inpaint.pth')
    outs = {}
    for name, mask in [('soft', soft), ('binary', binary)]:
        mpath = write(tmp_path / f'{name}_mask.png', mask)
        rc = main([path, '-o', str(tmp_path / name), '--checkpoint', ckpt, '--mask', mpath,
                   '--no-progress'])
        err = capsys.readouterr().err
        assert rc == 0, err
        assert ('not binary (3 levels): every non-zero value is a hole' in err) == (name == 'soft')
        outs[name] = np.array(PIL.Image.open(tmp_path / name / 'a.png'))
    np.testing.assert_array_equal(outs['soft'], outs['binary'])
    file_rgb = img[..., ::-1]  # written by OpenCV from BGR
    np.testing.assert_array_equal(outs['soft'][soft == 0], file_rgb[soft == 0])
    assert (outs['soft'][soft > 0] != file_rgb[soft > 0]).any()
