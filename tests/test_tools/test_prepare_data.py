"""tools/prepare_data.py: every layout on a miniature of its real download (real names and
folders), a bad file in each, and a run interrupted part-way then resumed."""
import json
import os
import os.path as osp
from pathlib import Path

import cv2
import numpy as np
import pytest
import helpers
from helpers import TOOLS_DIR, file_bytes, run_python, sample_image, write_broken_images
from PIL import Image

from diffir_mm.datasets.preparation import (PrepareError, common, prepare_celebahq, prepare_df2k,
                                            prepare_gopro, prepare_images, prepare_pairs,
                                            prepare_places)
from diffir_mm.datasets.preparation.df2k import META_FILE, multiscale_sizes, subimage_corners
from diffir_mm.datasets.preparation.gopro import crop_corners

PREPARE = osp.join(TOOLS_DIR, 'prepare_data.py')
PHOTOS = ('astronaut', 'coffee', 'chelsea', 'rocket', 'immunohistochemistry')


def _photo(name, height, width):
    img = sample_image(name, max(height, width))[:height, :width]
    return np.ascontiguousarray(img[..., ::-1])  # BGR for cv2.imwrite


def write(path, img):
    os.makedirs(osp.dirname(os.fspath(path)), exist_ok=True)
    return helpers.write(path, img)


def _files(root):
    """{relative path: bytes} of every file under root (hidden files included)."""
    return {str(p.relative_to(root)): p.read_bytes() for p in Path(root).rglob('*')
            if p.is_file()}


class Interrupt(Exception):
    """Stands for a kill part-way through a run."""


def _counting_writes(monkeypatch, limit=None):
    """Count the files a (serial) run writes; with ``limit``, stop it there as a kill would."""
    real = common.write_bytes_atomic
    count = [0]

    def counted(path, data):
        if count[0] == limit:
            raise Interrupt(path)
        count[0] += 1
        real(path, data)

    monkeypatch.setattr(common, 'write_bytes_atomic', counted)
    return count


def _resume_matches_clean_run(monkeypatch, tmp_path, run, writes):
    """Interrupt ``run(out)`` after ``writes`` files, leave a stale temporary file, resume, and
    compare with an uninterrupted run: same files, and the resumed run rewrites none of the
    finished jobs. Returns the resumed run's summary."""
    with monkeypatch.context() as patch:
        clean_writes = _counting_writes(patch)
        clean = run(tmp_path / 'clean')
    out = tmp_path / 'resumed'
    with monkeypatch.context() as patch:
        _counting_writes(patch, limit=writes)
        with pytest.raises(Interrupt):
            run(out)
    partial = _files(out)
    assert 0 < len(partial) < len(_files(tmp_path / 'clean'))
    folder = next(p for p in Path(out).rglob('*') if p.suffix in ('.png', '.jpg')).parent
    (folder / '.x.png.abc123.tmp').write_bytes(b'half')
    with monkeypatch.context() as patch:
        resumed_writes = _counting_writes(patch)
        summary = run(out)
    assert _files(out) == _files(tmp_path / 'clean')  # stale file removed, rest identical
    assert clean_writes[0] - writes <= resumed_writes[0] < clean_writes[0]
    assert summary.problems == clean.problems
    return summary


# --------------------------------------------------------------------------------- gopro
def _gopro_download(root):
    """GOPRO_Large: <split>/<sequence>/{blur,sharp}/<frame>.png, 72x112 frames."""
    frames = {'train': {'GOPR0372_07_00': ['000047', '000048'], 'GOPR0374_11_01': ['000001']},
              'test': {'GOPR0384_11_00': ['000001', '000002']}}
    for split, sequences in frames.items():
        for k, (seq, names) in enumerate(sequences.items()):
            for j, name in enumerate(names):
                sharp = _photo(PHOTOS[(k + j) % 5], 72, 112)
                write(root / split / seq / 'sharp' / f'{name}.png', sharp)
                write(root / split / seq / 'blur' / f'{name}.png',
                      cv2.GaussianBlur(sharp, (5, 5), 2))
    write_broken_images(root / 'train' / 'GOPR0374_11_01' / 'sharp', ('truncated', ))
    write(root / 'train' / 'GOPR0374_11_01' / 'blur' / 'truncated.png', _photo('coffee', 72, 112))
    return root


def test_gopro_crops_as_the_official_script(tmp_path):
    src = _gopro_download(tmp_path / 'GOPRO_Large')
    out = tmp_path / 'GoPro'
    summary = prepare_gopro(src, out, patch=48, overlap=24, workers=2)
    rows, cols = crop_corners(72, 48, 24), crop_corners(112, 48, 24)
    assert rows == [0, 24] and cols == [0, 24, 48, 64]  # last crop flush with the edge
    names = sorted(os.listdir(out / 'train' / 'input'))
    assert names == sorted(os.listdir(out / 'train' / 'target'))
    assert len(names) == 3 * len(rows) * len(cols)
    sharp = cv2.imread(str(src / 'train' / 'GOPR0372_07_00' / 'sharp' / '000047.png'))
    for k, (top, left) in enumerate([(t, c) for t in rows for c in cols], start=1):
        crop = cv2.imread(str(out / 'train' / 'target' / f'GOPR0372_07_00_000047-{k}.png'))
        np.testing.assert_array_equal(crop, sharp[top:top + 48, left:left + 48])
    assert sorted(os.listdir(out / 'test' / 'input')) == ['GOPR0384_11_00_000001.png',
                                                         'GOPR0384_11_00_000002.png']
    assert file_bytes(out / 'test' / 'target' / 'GOPR0384_11_00_000002.png') == file_bytes(
        src / 'test' / 'GOPR0384_11_00' / 'sharp' / '000002.png')
    assert [(Path(p.path).name, p.kind) for p in summary.problems] == [
        ('truncated.png', 'unreadable')]
    assert not any('truncated' in n for n in names)


def test_gopro_resumes_after_an_interruption(tmp_path, monkeypatch):
    src = _gopro_download(tmp_path / 'GOPRO_Large')
    _resume_matches_clean_run(
        monkeypatch, tmp_path, lambda out: prepare_gopro(src, out, patch=48, overlap=24), 11)


def test_outputs_never_overlap_inputs(tmp_path):
    src = _gopro_download(tmp_path / 'GOPRO_Large')
    before = _files(src)
    for out in (src, src / 'prepared', tmp_path):
        with pytest.raises(PrepareError, match='overlaps the input'):
            prepare_gopro(src, out, patch=48, overlap=24)
    assert _files(src) == before


# ---------------------------------------------------------------------------------- df2k
def _df2k_download(root):
    write(root / 'DIV2K_train_HR' / '0001.png', _photo('astronaut', 220, 300))
    write(root / 'Flickr2K_HR' / '000001.png', _photo('coffee', 240, 260))
    write(root / 'OST' / 'animal' / 'animal_0001.png', _photo('chelsea', 210, 210))
    write_broken_images(root / 'Flickr2K_HR', ('empty', ))
    return root


def test_df2k_multiscale_subimages_and_meta(tmp_path):
    src = _df2k_download(tmp_path / 'download')
    out = tmp_path / 'DF2K_OST'
    summary = prepare_df2k([src / 'DIV2K_train_HR', src / 'Flickr2K_HR'], out,
                           ost_dir=src / 'OST', crop=200, step=100, workers=2)
    hr = Image.open(src / 'DIV2K_train_HR' / '0001.png')
    sizes = multiscale_sizes(300, 220)
    assert sizes == [(225, 165), (150, 110), (100, 73), (545, 400)]
    for k, size in enumerate(sizes):
        scaled = Image.open(out / 'DF2K_multiscale' / f'0001T{k}.png')
        assert scaled.size == size
        np.testing.assert_array_equal(np.asarray(scaled),
                                      np.asarray(hr.resize(size, resample=Image.LANCZOS)))
    assert subimage_corners(545, 200, 100) == [0, 100, 200, 300, 345]
    assert subimage_corners(150, 200, 100) == []
    t3 = cv2.imread(str(out / 'DF2K_multiscale' / '0001T3.png'))
    windows = [(t, c) for t in subimage_corners(400, 200, 100)
               for c in subimage_corners(545, 200, 100)]
    for k, (top, left) in enumerate(windows, start=1):
        crop = cv2.imread(str(out / 'GT_sub' / f'0001T3_s{k:03d}.png'))
        np.testing.assert_array_equal(crop, t3[top:top + 200, left:left + 200])
    names = sorted(os.listdir(out / 'GT_sub'))
    assert (out / META_FILE).read_text().split() == names
    assert {'0001_s001.png', '000001T3_s001.png', 'animal_0001_s001.png'} <= set(names)
    assert [Path(p.path).name for p in summary.problems] == ['empty.png']


def test_df2k_resumes_after_an_interruption(tmp_path, monkeypatch):
    src = _df2k_download(tmp_path / 'download')
    _resume_matches_clean_run(
        monkeypatch, tmp_path, lambda out: prepare_df2k(
            [src / 'DIV2K_train_HR'], out, ost_dir=src / 'OST', crop=200, step=100), 9)


# ------------------------------------------------------------------------------ celebahq
def _celebahq_download(root):
    """data256x256/00001.jpg ... 00012.jpg and LaMa's two lists (after re-indexing)."""
    for i in range(1, 13):
        write(root / 'data256x256' / f'{i:05d}.jpg', _photo(PHOTOS[i % 5], 32, 32))
    (root / 'data256x256' / '00005.jpg').write_bytes(b'')  # a broken download
    (root / 'fetch_data').mkdir()
    (root / 'fetch_data' / 'train_shuffled.flist').write_text(
        ''.join(f'{i}.jpg\n' for i in (7, 3, 0, 9, 4, 1, 8, 2, 5, 6)))
    (root / 'fetch_data' / 'val_shuffled.flist').write_text('10.jpg\n11.jpg\n')
    return root


def test_celebahq_layout_split_and_masks(tmp_path):
    src = _celebahq_download(tmp_path / 'download')
    calls = []
    summary = prepare_celebahq(src / 'data256x256', tmp_path / 'celeba-hq-dataset',
                               src / 'fetch_data', seed=3, val_count=3,
                               write_eval_masks=lambda *args: calls.append(args))
    out = tmp_path / 'celeba-hq-dataset'
    val = (out / 'val_shuffled.flist').read_text().split()
    train = (out / 'train_shuffled.flist').read_text().split()
    assert len(val) == 3 and len(train) == 7
    assert sorted(val + train) == sorted(f'{i}.jpg' for i in range(10))
    assert sorted(os.listdir(out / 'visual_test_source_256')) == ['10.jpg', '11.jpg']
    assert sorted(os.listdir(out / 'val_source_256')) == sorted(v for v in val if v != '4.jpg')
    assert file_bytes(out / 'visual_test_source_256' / '10.jpg') == file_bytes(
        src / 'data256x256' / '00011.jpg')  # LaMa's re-indexing: 00011.jpg -> 10.jpg
    assert [(Path(p.path).name, p.detail) for p in summary.problems] == [
        ('00005.jpg', 'empty file')]
    assert calls == [(str(out / 'val_source_256'), str(out / 'val_256/random_thin_256'),
                      'thin_256'),
                     (str(out / 'val_source_256'), str(out / 'val_256/random_thick_256'),
                      'thick_256')]
    again = prepare_celebahq(src / 'data256x256', tmp_path / 'again', src / 'fetch_data',
                             seed=3, val_count=3)
    assert (tmp_path / 'again' / 'val_shuffled.flist').read_text() == '\n'.join(val) + '\n'
    assert any('evaluation masks: not written' in n for n in again.notes)


def test_celebahq_resumes_after_an_interruption(tmp_path, monkeypatch):
    src = _celebahq_download(tmp_path / 'download')
    _resume_matches_clean_run(monkeypatch, tmp_path, lambda out: prepare_celebahq(
        src / 'data256x256', out, src / 'fetch_data', seed=3, val_count=3), 5)


# -------------------------------------------------------------------------------- places
def _places_download(root):
    for i, scene in enumerate(('a/abbey', 'a/airfield', 'b/bakery/shop')):
        for j in range(1, 3):
            write(root / 'data_large' / scene / f'{j:08d}.jpg', _photo(PHOTOS[i], 40, 48))
    for j in range(1, 7):
        write(root / 'val_large' / f'Places365_val_{j:08d}.jpg', _photo(PHOTOS[j % 5], 40, 48))
        write(root / 'test_large' / f'Places365_test_{j:08d}.jpg', _photo(PHOTOS[j % 5], 48, 40))
    write_broken_images(root / 'data_large' / 'a' / 'abbey', ('text', ))
    return root


def _places(src, out, **kwargs):
    return prepare_places(src / 'data_large', src / 'val_large', src / 'test_large', out, seed=1,
                          val_count=2, visual_count=1, eval_count=4, **kwargs)


def test_places_layout(tmp_path):
    src = _places_download(tmp_path / 'download')
    out = tmp_path / 'places_standard_dataset'
    calls = []
    summary = _places(src, out, workers=2, write_eval_masks=lambda *args: calls.append(args))
    assert file_bytes(out / 'train' / 'b' / 'bakery' / 'shop' / '00000002.jpg') == file_bytes(
        src / 'data_large' / 'b' / 'bakery' / 'shop' / '00000002.jpg')
    assert len(list((out / 'train').rglob('*.jpg'))) == 6
    assert len(os.listdir(out / 'val_hires')) == 2
    assert all(n.startswith('Places365_test_') for n in os.listdir(out / 'val_hires'))
    assert len(os.listdir(out / 'evaluation' / 'hires')) == 4
    assert len(os.listdir(out / 'visual_test_hires')) == 1
    assert [Path(p.path).name for p in summary.problems] == ['text.png']
    assert [c[2] for c in calls] == ['thin_512', 'thick_512']
    assert calls[0][0] == str(out / 'evaluation/hires')
    _places(src, tmp_path / 'again')  # seeded: the same samples
    assert os.listdir(tmp_path / 'again' / 'evaluation' / 'hires') == os.listdir(
        out / 'evaluation' / 'hires')


def test_places_cli_writes_the_recipe_evaluation_masks(tmp_path):
    src = _places_download(tmp_path / 'download')
    out = tmp_path / 'places_standard_dataset'
    proc = run_python([PREPARE, 'places', '--train', str(src / 'data_large'), '--val-large',
                       str(src / 'val_large'), '--test-large', str(src / 'test_large'), str(out),
                       '--val-count', '2', '--visual-count', '1', '--eval-count', '3'])
    for preset in ('thin', 'thick'):
        folder = out / 'evaluation' / f'random_{preset}_512'
        masks = sorted(folder.glob('*_crop000_mask000.png'))
        assert masks and len(masks) + len(json.loads(
            (folder / 'lama_eval_masks.json').read_text())['dropped_images']) == 3
        assert cv2.imread(str(masks[0]), cv2.IMREAD_UNCHANGED).shape == (512, 512)
    assert 'evaluation/random_thin_512' in proc.stdout


def test_places_resumes_after_an_interruption(tmp_path, monkeypatch):
    src = _places_download(tmp_path / 'download')
    _resume_matches_clean_run(monkeypatch, tmp_path, lambda out: _places(src, out), 6)


# ----------------------------------------------------------------------- images / pairs
def _user_photos(root):
    for name in PHOTOS:
        write(root / f'{name}.jpg', _photo(name, 64, 80))
    write(root / 'scan.png', cv2.cvtColor(_photo('coffee', 64, 64), cv2.COLOR_BGR2GRAY))
    write(root / 'tiny.png', _photo('rocket', 16, 16))
    write_broken_images(root, ('truncated', 'empty'))
    return root


def test_images_split_checks_and_converts(tmp_path):
    src = _user_photos(tmp_path / 'photos')
    out = tmp_path / 'own_images'
    summary = prepare_images(src, out, val_ratio=0.3, seed=0, min_size=32, workers=2)
    split = json.loads((out / 'split.json').read_text())
    assert len(split['val']) == 2 and len(split['train']) == 4
    assert sorted(split['train'] + split['val']) == sorted(list(PHOTOS) + ['scan'])
    written = sorted(os.listdir(out / 'train') + os.listdir(out / 'val'))
    assert 'scan.png' in written and 'astronaut.jpg' in written
    assert file_bytes(out / ('train' if 'astronaut' in split['train'] else 'val') /
                      'astronaut.jpg') == file_bytes(src / 'astronaut.jpg')
    scan = cv2.imread(str(out / ('train' if 'scan' in split['train'] else 'val') / 'scan.png'),
                      cv2.IMREAD_UNCHANGED)
    assert scan.shape == (64, 64, 3)  # written as the 8-bit RGB training reads
    assert sorted((Path(p.path).name, p.kind) for p in summary.problems) == [
        ('empty.png', 'unreadable'), ('tiny.png', 'size'), ('truncated.png', 'unreadable')]
    with pytest.raises(PrepareError, match='already holds another split'):
        prepare_images(src, out, val_ratio=0.5, seed=0, min_size=32)


def test_images_resume_after_an_interruption(tmp_path, monkeypatch):
    src = _user_photos(tmp_path / 'photos')
    _resume_matches_clean_run(monkeypatch, tmp_path, lambda out: prepare_images(
        src, out, val_ratio=0.3, seed=0), 3)


def _user_pairs(root):
    for name in PHOTOS[:4]:
        sharp = _photo(name, 64, 64)
        write(root / 'sharp' / f'{name}.png', sharp)
        write(root / 'blurry' / f'{name}.png', cv2.GaussianBlur(sharp, (5, 5), 2))
    write(root / 'sharp' / 'lonely.png', _photo('coffee', 64, 64))
    write(root / 'sharp' / 'cropped.png', _photo('coffee', 64, 64))
    write(root / 'blurry' / 'cropped.png', _photo('coffee', 60, 64))
    write_broken_images(root / 'blurry', ('text', ))
    write(root / 'sharp' / 'text.png', _photo('coffee', 64, 64))
    return root


def test_pairs_split_checks_pairs(tmp_path):
    src = _user_pairs(tmp_path / 'data')
    out = tmp_path / 'own_pairs'
    summary = prepare_pairs(src / 'blurry', src / 'sharp', out, val_ratio=0.25, seed=0,
                            crop=32, workers=2)
    for split in ('train', 'val'):
        assert os.listdir(out / split / 'input') and \
            sorted(os.listdir(out / split / 'input')) == sorted(os.listdir(out / split / 'target'))
    assert len(os.listdir(out / 'val' / 'target')) == 1
    assert len(os.listdir(out / 'train' / 'target')) == 3
    name = os.listdir(out / 'val' / 'target')[0]
    assert file_bytes(out / 'val' / 'input' / name) == file_bytes(src / 'blurry' / name)
    assert sorted((Path(p.path).name, p.kind) for p in summary.problems) == [
        ('cropped.png', 'size'), ('lonely.png', 'unpaired'), ('text.png', 'unreadable')]


def test_cli_lists_left_out_files_and_errors_in_one_line(tmp_path):
    src = _user_pairs(tmp_path / 'data')
    out = tmp_path / 'own_pairs'
    proc = run_python([PREPARE, 'pairs', str(src / 'blurry'), str(src / 'sharp'), str(out),
                       '--workers', '2', '--strict'], check=False)
    assert proc.returncode == 2, proc.stdout
    assert 'lonely.png: GT without its LQ' in proc.stdout
    assert 'left out 3 input(s)' in proc.stdout
    assert 'train/target: 3 files' in proc.stdout and 'val/target: 1 files' in proc.stdout
    assert 'Warning' not in proc.stdout
    again = run_python([PREPARE, 'pairs', str(src / 'blurry'), str(src / 'sharp'), str(out)],
                       check=False)
    assert again.returncode == 0 and 'train/target: 3 files (3 already there)' in again.stdout
    bad = run_python([PREPARE, 'pairs', str(src / 'blurry'), str(src / 'sharp'),
                      str(src / 'sharp' / 'out')], check=False)
    assert bad.returncode == 1
    lines = [ln for ln in bad.stdout.splitlines() if ln.strip()]
    assert len(lines) == 1 and 'error: the output folder' in lines[0], bad.stdout
