"""Image reading / writing for inference (diffir_mm.inference.io)."""
import os

import cv2
import numpy as np
import pytest
from helpers import file_bytes, write

from diffir_mm.inference import ImageIOError, read_image, write_image
from diffir_mm.inference.io import side_by_side


def _read(path):
    return cv2.imread(os.fspath(path), cv2.IMREAD_UNCHANGED)


def test_rgb_8bit_roundtrip(tmp_path, rng):
    bgr = rng.integers(0, 256, (9, 13, 3), dtype=np.uint8)
    rec = read_image(write(tmp_path / 'a.png', bgr))
    assert rec.rgb.shape == (9, 13, 3) and rec.rgb.dtype == np.float32
    np.testing.assert_allclose(rec.rgb, bgr[..., ::-1] / 255.0, atol=1e-7)
    assert not rec.gray and rec.alpha is None and rec.notes == []
    write_image(tmp_path / 'b.png', rec.rgb, rec)
    np.testing.assert_array_equal(_read(tmp_path / 'b.png'), bgr)


def test_grayscale_is_rgb_inside_and_gray_outside(tmp_path, rng):
    gray = rng.integers(0, 256, (7, 5), dtype=np.uint8)
    rec = read_image(write(tmp_path / 'g.png', gray))
    assert rec.gray and rec.rgb.shape == (7, 5, 3)
    assert 'grayscale' in rec.notes[0]
    write_image(tmp_path / 'o.png', rec.rgb, rec)
    out = _read(tmp_path / 'o.png')
    assert out.shape == (7, 5) and out.dtype == np.uint8
    np.testing.assert_array_equal(out, gray)


def test_rgba_alpha_is_carried_and_resized_for_sr(tmp_path, rng):
    bgra = rng.integers(0, 256, (6, 8, 4), dtype=np.uint8)
    rec = read_image(write(tmp_path / 'a.png', bgra))
    np.testing.assert_array_equal(rec.alpha, bgra[..., 3])
    write_image(tmp_path / 'same.png', rec.rgb, rec)
    np.testing.assert_array_equal(_read(tmp_path / 'same.png'), bgra)  # alpha unchanged
    big = cv2.resize(rec.rgb, (32, 24), interpolation=cv2.INTER_NEAREST)
    write_image(tmp_path / 'x4.png', big, rec)
    out = _read(tmp_path / 'x4.png')
    assert out.shape == (24, 32, 4)
    np.testing.assert_array_equal(out[..., 3], cv2.resize(bgra[..., 3], (32, 24),
                                                          interpolation=cv2.INTER_LINEAR))


def test_16bit_is_float_inside_and_16bit_outside(tmp_path, rng):
    deep = rng.integers(0, 65536, (5, 6, 3), dtype=np.uint16)
    rec = read_image(write(tmp_path / 'd.png', deep))
    assert rec.dtype == np.uint16 and any('16-bit' in n for n in rec.notes)
    np.testing.assert_allclose(rec.rgb, deep[..., ::-1] / 65535.0, atol=1e-7)
    write_image(tmp_path / 'o.png', rec.rgb, rec)
    out = _read(tmp_path / 'o.png')
    assert out.dtype == np.uint16
    np.testing.assert_array_equal(out, deep)
    notes = []
    write_image(tmp_path / 'o.jpg', rec.rgb, rec, notes=notes)
    assert _read(tmp_path / 'o.jpg').dtype == np.uint8
    assert any('uint16 samples written as uint8' in n for n in notes)


def test_16bit_gray_with_alpha_to_jpg_drops_alpha_with_note(tmp_path, rng):
    rgba = rng.integers(0, 256, (4, 4, 4), dtype=np.uint8)
    rec = read_image(write(tmp_path / 'a.png', rgba))
    notes = []
    write_image(tmp_path / 'a.jpg', rec.rgb, rec, notes=notes)
    assert _read(tmp_path / 'a.jpg').shape == (4, 4, 3)
    assert any('alpha channel dropped' in n for n in notes)


@pytest.mark.parametrize('content,message', [(None, 'no such file'), (b'', 'empty file'),
                                             (b'\x89PNG\r\n\x1a\ngarbage', 'cannot decode'),
                                             (b'hello', 'cannot decode')])
def test_unreadable_inputs_give_one_line_errors(tmp_path, content, message):
    path = tmp_path / 'bad.png'
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ImageIOError, match=message) as info:
        read_image(path)
    assert '\n' not in str(info.value)


def test_folder_is_not_an_image(tmp_path):
    with pytest.raises(ImageIOError, match='folder'):
        read_image(tmp_path)


def test_write_refuses_to_overwrite_an_input(tmp_path, rng):
    src = write(tmp_path / 'in.png', rng.integers(0, 256, (4, 4, 3), dtype=np.uint8))
    before = file_bytes(src)
    rec = read_image(src)
    with pytest.raises(ImageIOError, match='refusing to overwrite'):
        write_image(os.path.join(tmp_path, '.', 'in.png'), rec.rgb * 0, rec, protect=[src])
    assert file_bytes(src) == before


def test_write_is_atomic(tmp_path, rng, monkeypatch):
    dst = write(tmp_path / 'out.png', rng.integers(0, 256, (4, 4, 3), dtype=np.uint8))
    before = file_bytes(dst)

    def boom(src, dst_):
        raise OSError(28, 'No space left on device')

    monkeypatch.setattr(os, 'replace', boom)
    with pytest.raises(ImageIOError, match='No space left'):
        write_image(dst, np.zeros((4, 4, 3), np.float32))
    assert file_bytes(dst) == before
    assert sorted(os.listdir(tmp_path)) == ['out.png']  # no temporary file left behind


def test_side_by_side_upscales_the_input():
    lr = np.zeros((4, 5, 3), np.float32)
    hr = np.ones((16, 20, 3), np.float32)
    both = side_by_side(lr, hr)
    assert both.shape == (16, 40, 3)
    assert both[:, :20].max() == 0 and both[:, 20:].min() == 1
