"""The data checker: decodable files, non-RGB surprises, pairs the recipe can crop."""
import os

import cv2
import numpy as np
import pytest
from helpers import sample_image, write, write_broken_images

from diffir_mm.datasets.file_checks import (PairRule, check_files, check_pairs, decode_problem,
                                            match_pairs, probe_image)


def _photo(size=48):
    return np.ascontiguousarray(sample_image('astronaut', size)[..., ::-1])


def test_decode_problem_names_each_broken_file(tmp_path):
    broken = write_broken_images(tmp_path, ('truncated', 'empty', 'text', 'jpeg'))
    good = write(tmp_path / 'good.png', _photo())
    good_jpeg = write(tmp_path / 'good.jpg', _photo())
    assert decode_problem(good) is None
    assert decode_problem(good_jpeg) is None
    assert decode_problem(broken['empty']) == 'empty file'
    assert 'cannot decode' in decode_problem(broken['text'])
    assert 'cannot decode' in decode_problem(broken['truncated'])
    # libjpeg decodes a cut JPEG with grey rows: only the missing end marker tells
    assert cv2.imread(broken['jpeg']) is not None
    assert 'truncated JPEG' in decode_problem(broken['jpeg'])
    assert decode_problem(str(tmp_path / 'missing.png')) == 'no such file'
    assert 'folder' in decode_problem(str(tmp_path))


def test_probe_image_describes_non_rgb_files(tmp_path):
    photo = _photo()
    gray = write(tmp_path / 'gray.png', cv2.cvtColor(photo, cv2.COLOR_BGR2GRAY))
    rgba = write(tmp_path / 'rgba.png', cv2.cvtColor(photo, cv2.COLOR_BGR2BGRA))
    deep = write(tmp_path / 'deep.png', photo.astype(np.uint16) * 257)
    rgb = write(tmp_path / 'rgb.png', photo)
    infos, findings = check_files([gray, rgba, deep, rgb])
    assert infos[rgb].channels == 3 and infos[deep].dtype == 'uint16'
    details = {os.path.basename(f.path): f.detail for f in findings}
    assert set(details) == {'gray.png', 'rgba.png', 'deep.png'}
    assert {f.kind for f in findings} == {'non-rgb'}
    assert 'grayscale' in details['gray.png']
    assert 'alpha' in details['rgba.png']
    assert 'uint16' in details['deep.png']
    assert probe_image(rgb)[0].height == 48


def test_match_pairs_by_stem():
    pairs, gt_only, lq_only = match_pairs(['lq/a.png', 'lq/b.jpg', 'lq/c.png'],
                                          ['gt/a.png', 'gt/b.png', 'gt/d.png'])
    assert pairs == [('lq/a.png', 'gt/a.png'), ('lq/b.jpg', 'gt/b.png')]
    assert gt_only == ['gt/d.png'] and lq_only == ['lq/c.png']


@pytest.mark.parametrize('workers', [1, 2])
def test_check_pairs_lists_every_problem_once(tmp_path, workers):
    lq_dir, gt_dir = tmp_path / 'lq', tmp_path / 'gt'
    lq_dir.mkdir(), gt_dir.mkdir()
    photo = _photo(64)
    half = cv2.resize(photo, (32, 32), interpolation=cv2.INTER_AREA)
    for name in ('good1', 'good2'):
        write(gt_dir / f'{name}.png', photo)
        write(lq_dir / f'{name}.png', half)
    write(gt_dir / 'orphan.png', photo)  # GT without its LQ
    write(gt_dir / 'wrong_size.png', photo)
    write(lq_dir / 'wrong_size.png', photo)  # 64 vs 64: not x2
    small = cv2.resize(photo, (24, 24))
    write(gt_dir / 'small.png', small)
    write(lq_dir / 'small.png', cv2.resize(small, (12, 12)))
    write_broken_images(gt_dir, ('truncated', ))
    write(lq_dir / 'truncated.png', half)
    rule = PairRule(scale=2, min_gt_size=32)
    good, findings = check_pairs(sorted(map(str, lq_dir.iterdir())),
                                 sorted(map(str, gt_dir.iterdir())), rule, workers=workers)
    assert [os.path.basename(gt) for _, gt in good] == ['good1.png', 'good2.png']
    found = {(os.path.basename(f.path), f.kind) for f in findings}
    assert found == {('orphan.png', 'unpaired'), ('wrong_size.png', 'size'),
                     ('small.png', 'size'), ('truncated.png', 'unreadable')}
    detail = {os.path.basename(f.path): f.detail for f in findings}
    assert '2x the LQ size' in detail['wrong_size.png']
    assert 'smaller than the training patch 32x32' in detail['small.png']
    assert 'GT without its LQ' in detail['orphan.png']
