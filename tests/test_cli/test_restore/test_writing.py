"""diffir_mm.cli.restore.writing: output names, never onto an input, atomic files."""
import os

import cv2
import numpy as np
import pytest
from helpers import file_bytes, write

from diffir_mm.cli.restore.errors import Reporter, SetupError
from diffir_mm.cli.restore.writing import (OutputPlan, OutputRefused, ResultWriter,
                                           prepare_output_dir, write_restored)
from diffir_mm.inference.io import ImageIOError, ImageRecord, read_image
from diffir_mm.utils import atomic


@pytest.mark.parametrize('suffix,ext,extra,name', [
    ('', None, '', 'a.jpg'), ('_x2', None, '', 'a_x2.jpg'), ('', '.TIFF', '', 'a.tiff'),
    ('_r', 'png', '_compare', 'a_r_compare.png'),
])
def test_output_names(suffix, ext, extra, name):
    plan = OutputPlan('out', suffix, ext)
    assert plan.path_for('photos/a.jpg', extra) == os.path.join('out', name)


def test_claim_refuses_inputs_and_second_claims(tmp_path):
    src = tmp_path / 'in'
    src.mkdir()
    for name in ('a.png', 'mask.png'):
        (src / name).write_bytes(b'x')
    os.symlink(src, tmp_path / 'alias')
    plan = OutputPlan(str(tmp_path / 'alias'), protect=[str(src / 'a.png'), str(src / 'mask.png')])
    with pytest.raises(OutputRefused, match='is an input file; refusing to overwrite it'):
        plan.claim(str(src / 'a.png'))  # the same file through the link
    with pytest.raises(OutputRefused, match='is an input file'):
        plan.claim(str(tmp_path / 'elsewhere' / 'mask.png'))  # names a protected mask
    other = OutputPlan(str(tmp_path / 'out'))
    assert other.claim('x/same.png') == str(tmp_path / 'out' / 'same.png')
    with pytest.raises(OutputRefused, match='would also be written for x/same.png; skipped'):
        other.claim('y/same.png')


def test_prepare_output_dir(tmp_path):
    prepare_output_dir(str(tmp_path / 'a' / 'b'))
    assert (tmp_path / 'a' / 'b').is_dir()
    (tmp_path / 'file').write_text('x')
    with pytest.raises(SetupError, match=r'^cannot create .*file/sub: Not a directory$'):
        prepare_output_dir(str(tmp_path / 'file' / 'sub'))


def test_write_restored_keeps_the_input_layout(tmp_path):
    rng = np.random.default_rng(0)
    gray16 = read_image(write(tmp_path / 'g.png', rng.integers(0, 65536, (6, 5), np.uint16)))
    rgba = read_image(write(tmp_path / 'a.png', rng.integers(0, 256, (6, 5, 4), np.uint8)))
    out = rng.random((6, 5, 3), dtype=np.float32)
    assert write_restored(str(tmp_path / 'out' / 'g.png'), out, gray16) == []
    back = cv2.imread(str(tmp_path / 'out' / 'g.png'), cv2.IMREAD_UNCHANGED)
    assert back.dtype == np.uint16 and back.shape == (6, 5)
    notes = write_restored(str(tmp_path / 'out' / 'a.jpg'), out, rgba)
    assert notes == ['alpha channel dropped (.jpg has no alpha)']
    assert sorted(os.listdir(tmp_path / 'out')) == ['a.jpg', 'g.png']  # no temporaries


def _disk_full(src, dst):
    raise OSError(28, 'No space left on device')


def test_write_restored_is_all_or_nothing(tmp_path, monkeypatch):
    """A failed write leaves the old file and no partial or temporary one (utils/atomic.py)."""
    (tmp_path / 'out.png').write_bytes(b'old')
    monkeypatch.setattr(atomic.os, 'replace', _disk_full)
    with pytest.raises(ImageIOError, match='No space left on device'):
        write_restored(str(tmp_path / 'out.png'), np.zeros((4, 4, 3), np.float32),
                       ImageRecord(rgb=np.zeros((4, 4, 3), np.float32)))
    assert os.listdir(tmp_path) == ['out.png'] and (tmp_path / 'out.png').read_bytes() == b'old'


def test_write_restored_never_replaces_a_protected_file(tmp_path):
    rng = np.random.default_rng(0)
    path = write(tmp_path / 'a.png', rng.integers(0, 256, (4, 4, 3), np.uint8))
    before = file_bytes(path)
    with pytest.raises(ImageIOError, match='refusing to overwrite the input file'):
        write_restored(path, np.zeros((4, 4, 3), np.float32), read_image(path), protect=[path])
    assert file_bytes(path) == before


def test_result_writer_reports_and_counts(tmp_path, capsys):
    rng = np.random.default_rng(0)
    src = tmp_path / 'in'
    src.mkdir()
    a = write(src / 'a.png', rng.integers(0, 256, (4, 4, 4), np.uint8))
    write(src / 'a_compare.jpg', rng.integers(0, 256, (4, 4, 3), np.uint8))
    out = rng.random((8, 8, 3), dtype=np.float32)  # an x2 result
    reporter = Reporter()
    plan = OutputPlan(str(src), ext='jpg', protect=[str(p) for p in src.iterdir()])
    writer = ResultWriter(plan, reporter, compare=True)
    writer.write(a, str(src / 'a.jpg'), out, read_image(a), [a])
    assert capsys.readouterr().err.splitlines() == [
        f'note: {a}: alpha channel dropped (.jpg has no alpha)',
        f'error: {a}: cannot write {src / "a_compare.jpg"}: the comparison path is an input file']
    assert (reporter.done, reporter.failed) == (1, 1)
    writer.compare = False
    writer.write(a, str(tmp_path / 'noext'), out, read_image(a), [a])
    assert capsys.readouterr().err.strip() == (
        f'error: {a}: cannot write {tmp_path / "noext"}: output path {tmp_path / "noext"} has no '
        'extension')
    assert (reporter.done, reporter.failed) == (1, 2)


def test_result_writer_comparison(tmp_path):
    rng = np.random.default_rng(0)
    a = write(tmp_path / 'a.png', rng.integers(0, 256, (4, 6, 4), np.uint8))
    plan = OutputPlan(str(tmp_path / 'out'))
    ResultWriter(plan, Reporter(), compare=True).write(
        a, plan.claim(a), rng.random((8, 12, 3), dtype=np.float32), read_image(a), [a])
    assert cv2.imread(str(tmp_path / 'out' / 'a.png'), cv2.IMREAD_UNCHANGED).shape == (8, 12, 4)
    side = cv2.imread(str(tmp_path / 'out' / 'a_compare.png'), cv2.IMREAD_UNCHANGED)
    assert side.shape == (8, 24, 3)  # input (enlarged) | result, no alpha
