"""LaMa inpainting masks: training sampler, deterministic evaluation masks, mask files."""
import os.path as osp

import cv2
import numpy as np
import pytest

from diffir_mm.datasets.transforms.masks import (MASK_PRESETS, GenerateInpaintingMask,
                                                 LoadInpaintingMask, MixedMaskSampler,
                                                 draw_random_boxes)

EVAL_PRESETS = [name for name in MASK_PRESETS if name != 'train']


def _size(preset: str) -> int:
    return 512 if preset.endswith('512') else 256


def _sample(path: str, size: int = 256) -> dict:
    return dict(gt=np.zeros((size, size, 3), np.uint8), gt_path=path)


def _max_hole_radius(mask: np.ndarray) -> float:
    """Largest distance of a hole pixel to the nearest known pixel."""
    return float(cv2.distanceTransform((mask > 0).astype(np.uint8), cv2.DIST_L2, 5).max())


@pytest.fixture(scope='module')
def eval_masks():
    """40 masks of every evaluation preset."""
    out = {}
    for name in EVAL_PRESETS:
        sampler, rng = MixedMaskSampler(**MASK_PRESETS[name]), np.random.RandomState(3)
        out[name] = [sampler((_size(name),) * 2, rng) for _ in range(40)]
    return out


@pytest.mark.parametrize('preset', EVAL_PRESETS)
def test_eval_mask_coverage_within_lama_tamper_limit(eval_masks, preset):
    # LaMa's data_gen configs keep masks covering at most max_tamper_area = 0.5; none is empty.
    coverage = np.array([m.mean() for m in eval_masks[preset]])
    assert coverage.min() > 0
    assert coverage.max() <= 0.5
    assert all(set(np.unique(m)) <= {0.0, 1.0} for m in eval_masks[preset])
    assert coverage.std() > 0.01  # masks differ from each other


@pytest.mark.parametrize('size', [256, 512])
def test_thin_medium_thick_holes_grow_thicker(eval_masks, size):
    radius = {kind: np.median([_max_hole_radius(m) for m in eval_masks[f'{kind}_{size}']])
              for kind in ('thin', 'medium', 'thick')}
    assert radius['thin'] < radius['medium'] < radius['thick']
    # thin strokes are at most 5 + max_width - 1 pixels wide: only overlaps go beyond half that
    thin_width = 5 + MASK_PRESETS[f'thin_{size}']['irregular']['max_width'] - 1
    assert radius['thin'] < 1.5 * thin_width


def test_training_boxes_respect_margin_and_size():
    rng = np.random.RandomState(0)
    params = dict(MASK_PRESETS['train']['box'])
    params.pop('p')
    params['boxes'] = (1, 1)
    for _ in range(30):
        mask = draw_random_boxes((256, 256), rng, **params)
        ys, xs = np.nonzero(mask)
        height, width = ys.max() - ys.min() + 1, xs.max() - xs.min() + 1
        assert 30 <= height <= 150 and 30 <= width <= 150
        assert mask.sum() == height * width  # one solid rectangle
        assert ys.min() >= 10 and xs.min() >= 10 and ys.max() < 246 and xs.max() < 246


def test_box_count_range_is_inclusive():
    rng = np.random.RandomState(0)
    counts = set()
    for _ in range(200):
        mask = draw_random_boxes((256, 256), rng, margin=10, bbox_min_size=30, bbox_max_size=30,
                                 boxes=(1, 4))
        counts.add(cv2.connectedComponents(mask.astype(np.uint8), connectivity=4)[0] - 1)
    assert max(counts) <= 4 and min(counts) >= 1 and 4 in counts


def test_train_preset_mixes_strokes_and_boxes():
    sampler, rng = MixedMaskSampler(**MASK_PRESETS['train']), np.random.RandomState(0)
    np.testing.assert_allclose(sampler.probabilities, [0.5, 0.5])
    calls = []

    def counting(draw, kind):
        def wrapped(*args, **kwargs):
            calls.append(kind)
            return draw(*args, **kwargs)
        return wrapped

    sampler.kinds = [(counting(draw, draw.__name__), params) for draw, params in sampler.kinds]
    masks = [sampler((256, 256), rng) for _ in range(200)]
    assert 70 < calls.count('draw_random_boxes') < 130
    assert 70 < calls.count('draw_irregular_strokes') < 130
    assert max(m.mean() for m in masks) > 0.5  # training masks are not capped


def test_same_seed_same_masks_any_order():
    gen = GenerateInpaintingMask('thick_256', seed=7)
    names = [f'/data/a/img{i}.png' for i in range(4)]
    first = [gen(_sample(n))['mask'] for n in names]
    again = [GenerateInpaintingMask('thick_256', seed=7)(_sample(n.replace('/a/', '/b/')))['mask']
             for n in reversed(names)][::-1]
    for a, b in zip(first, again):
        assert a.shape == (256, 256, 1) and a.dtype == np.float32
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0], first[1])  # different images, different masks
    other_seed = GenerateInpaintingMask('thick_256', seed=8)(_sample(names[0]))['mask']
    assert not np.array_equal(first[0], other_seed)


def test_training_masks_follow_numpy_global_state():
    gen = GenerateInpaintingMask('train')
    np.random.seed(5)
    a = gen(_sample('x.png'))['mask']
    b = gen(_sample('x.png'))['mask']
    np.random.seed(5)
    np.testing.assert_array_equal(gen(_sample('x.png'))['mask'], a)
    assert not np.array_equal(a, b)


def test_generate_bad_input():
    with pytest.raises(ValueError, match='unknown mask preset'):
        GenerateInpaintingMask('wide')
    with pytest.raises(KeyError, match='no file path'):
        GenerateInpaintingMask('thin_256', seed=0)(dict(gt=np.zeros((8, 8, 3))))
    with pytest.raises(KeyError, match='image .gt. loaded first'):
        GenerateInpaintingMask('train')(dict(img=np.zeros((8, 8, 3))))
    with pytest.raises(ValueError, match='no room for boxes'):
        draw_random_boxes((40, 40), np.random.RandomState(0))


def _write(path: str, array: np.ndarray) -> str:
    assert cv2.imwrite(path, array)
    return path


def test_load_mask_from_folder(tmp_path):
    mask = np.zeros((32, 32), np.uint8)
    mask[4:20, 8:12] = 255
    _write(str(tmp_path / 'face_mask000.png'), mask)
    out = LoadInpaintingMask(mask_dir=str(tmp_path))(_sample('/x/face.jpg', 32))
    assert out['mask'].shape == (32, 32, 1) and out['mask'].dtype == np.float32
    np.testing.assert_array_equal(out['mask'][..., 0], mask / 255)
    assert out['mask_path'] == osp.join(str(tmp_path), 'face_mask000.png')
    # 0/1 masks and an explicit mask_path work too
    _write(str(tmp_path / 'ones.png'), (mask > 0).astype(np.uint8))
    sample = dict(_sample('/x/other.png', 32), mask_path=str(tmp_path / 'ones.png'))
    np.testing.assert_array_equal(LoadInpaintingMask()(sample)['mask'][..., 0], mask / 255)


def test_load_mask_bad_input(tmp_path):
    loader = LoadInpaintingMask(mask_dir=str(tmp_path))
    with pytest.raises(FileNotFoundError, match='mask not found: .*missing_mask000.png'):
        loader(_sample('missing.png', 32))
    with pytest.raises(KeyError, match='no mask given'):
        LoadInpaintingMask()(_sample('a.png', 32))
    _write(str(tmp_path / 'big_mask000.png'), np.zeros((40, 32), np.uint8))
    with pytest.raises(ValueError, match=r'is 40x32 but its image is 32x32'):
        loader(_sample('big.png', 32))
    (tmp_path / 'junk_mask000.png').write_bytes(b'not an image')
    with pytest.raises(ValueError, match='cannot read mask'):
        loader(_sample('junk.png', 32))
    grey = np.tile(np.arange(32, dtype=np.uint8) * 8, (32, 1))
    _write(str(tmp_path / 'grey_mask000.png'), grey)
    with pytest.raises(ValueError, match='not binary .32 grey levels'):
        loader(_sample('grey.png', 32))
    # documented conversions: > threshold is a hole
    official = LoadInpaintingMask(mask_dir=str(tmp_path), threshold=0)(_sample('grey.png', 32))
    np.testing.assert_array_equal(official['mask'][..., 0], (grey > 0).astype(np.float32))
    half = LoadInpaintingMask(mask_dir=str(tmp_path), threshold=127)(_sample('grey.png', 32))
    assert half['mask'].mean() == pytest.approx((grey > 127).mean())


def test_masks_are_registered_transforms():
    from mmagic.registry import TRANSFORMS

    import diffir_mm.registration  # noqa: F401

    gen = TRANSFORMS.build(dict(type='GenerateInpaintingMask', preset='thin_256', seed=0))
    assert isinstance(gen, GenerateInpaintingMask)
    assert isinstance(TRANSFORMS.build(dict(type='LoadInpaintingMask', mask_dir='m')),
                      LoadInpaintingMask)
