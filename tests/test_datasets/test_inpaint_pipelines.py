"""The inpainting dataset bases (``configs/_base_/datasets/{celebahq,places}_inpaint.py``) run.

Their pipelines and datasets are built from the real config files and fed scikit-image photos:
training samples (masked input, GT, LaMa training mask; Places augmentations reproducible from
NumPy's global seed), the seeded evaluation masks (same masks in every run, protocol sizes; the
Places samples cut from the resized image as LaMa does), and LaMa's mask-folder layout
(``<name>.png`` + ``<name>_mask000.png``).
"""
import os.path as osp

import cv2
import numpy as np
import pytest
from mmengine import Config

from helpers import REPO_ROOT, sample_image

DATASETS = osp.join(REPO_ROOT, 'configs', '_base_', 'datasets')


def _base(name):
    import diffir_mm.registration  # noqa: F401
    from mmengine.registry import init_default_scope
    init_default_scope('mmagic')
    return Config.fromfile(osp.join(DATASETS, f'{name}_inpaint.py'))


def _pipeline(steps):
    from mmengine.dataset import Compose
    from mmagic.registry import TRANSFORMS
    return Compose([TRANSFORMS.build(step) for step in steps])


def _write_rgb(path, rgb):
    cv2.imwrite(str(path), np.ascontiguousarray(rgb[..., ::-1]))


def _photo(tmp_path, name, height, width):
    import skimage.data
    img = getattr(skimage.data, name)()[..., :3]
    img = cv2.resize(img, (width, height), interpolation=cv2.INTER_AREA)
    path = tmp_path / f'{name}.png'
    _write_rgb(path, img)
    return str(path), img


def _run(pipeline, path):
    return pipeline(dict(gt_path=path, img_path=path))


def _check_sample(out, size):
    inputs, sample = out['inputs'], out['data_samples']
    mask = sample.mask
    gt = sample.gt_img
    assert inputs.shape == (3, size, size) and gt.shape == (3, size, size)
    assert mask.shape == (1, size, size)
    mask = np.asarray(mask)
    assert set(np.unique(mask)) <= {0.0, 1.0} and 0 < mask.mean() < 1
    inputs, gt = np.asarray(inputs, np.float32), np.asarray(gt, np.float32)
    hole = mask[0] == 1
    assert (inputs[:, hole] == 0).all(), 'holes must be zero in the model input'
    np.testing.assert_array_equal(inputs[:, ~hole], gt[:, ~hole])
    return mask


def test_celeba_training_sample(tmp_path):
    cfg = _base('celebahq')
    path, _ = _photo(tmp_path, 'astronaut', 256, 256)
    pipeline = _pipeline(cfg.train_pipeline)
    np.random.seed(0)
    first = _check_sample(_run(pipeline, path), 256)
    second = _check_sample(_run(pipeline, path), 256)
    assert not np.array_equal(first, second), 'training masks must be drawn anew per sample'


def test_places_training_augmentations_follow_numpy_seed(tmp_path):
    cfg = _base('places')
    path, _ = _photo(tmp_path, 'coffee', 300, 400)
    pipeline = _pipeline(cfg.train_pipeline)
    outputs = []
    for seed in (0, 0, 1):
        np.random.seed(seed)
        out = _run(pipeline, path)
        _check_sample(out, 256)
        outputs.append(np.asarray(out['data_samples'].gt_img))
    np.testing.assert_array_equal(outputs[0], outputs[1])  # reproducible, resumable
    assert not np.array_equal(outputs[0], outputs[2])


def test_lama_optical_distortion_reflects_the_border():
    import albumentations as A
    from diffir_mm.datasets.transforms import LamaOpticalDistortion
    img = np.full((64, 64, 3), 200, np.uint8)
    ours = LamaOpticalDistortion(distort_limit=(0.05, 0.05), p=1.0)
    new = A.OpticalDistortion(distort_limit=(0.05, 0.05), p=1.0)
    ours.set_random_seed(0)
    new.set_random_seed(0)
    assert (ours(image=img)['image'] == 200).all()  # albumentations 0.5.2: reflect-101
    assert (new(image=img)['image'] == 0).any()  # albumentations 1.4: black border


@pytest.mark.parametrize('name, size', [('celebahq', 256), ('places', 512)])
def test_eval_masks_are_seeded_per_file(tmp_path, name, size):
    cfg = _base(name)
    height, width = (size, size) if name == 'celebahq' else (600, 800)
    path_a, _ = _photo(tmp_path, 'chelsea', height, width)
    path_b, _ = _photo(tmp_path, 'rocket', height, width)
    coverage = []
    for steps in (cfg.thin_pipeline, cfg.thick_pipeline):
        pipeline = _pipeline(steps)
        np.random.seed(0)
        mask_a = _check_sample(_run(pipeline, path_a), size)
        np.random.seed(1)  # the global generator plays no part
        np.testing.assert_array_equal(mask_a, _check_sample(_run(pipeline, path_a), size))
        mask_b = _check_sample(_run(pipeline, path_b), size)
        assert not np.array_equal(mask_a, mask_b)
        coverage.append(mask_a.mean())
    assert coverage[0] < coverage[1] <= 0.5  # thin < thick; LaMa's max_tamper_area 0.5


@pytest.mark.parametrize('height, width', [(300, 400), (400, 300), (333, 333)])
def test_places_eval_sample_is_a_square_of_the_resized_image(tmp_path, height, width):
    from PIL import Image
    cfg = _base('places')
    path, img = _photo(tmp_path, 'coffee', height, width)
    assert cfg.thick_pipeline[-1]['type'] == 'PackInputs'
    out = _run(_pipeline(cfg.thick_pipeline[:-1]), path)  # unpacked: the crop box is kept
    gt, mask = out['gt'], out['mask'][..., 0]
    assert mask.shape == (512, 512) and 0 < mask.mean() <= 0.5  # LaMa's max_tamper_area
    left, top, side, _ = out['gt_crop_bbox']
    # LaMa: short side to 512 (bicubic, PIL), the long one scaled and rounded, then a square
    # that slides along the long side only
    long_side = int(np.round(512 * max(height, width) / min(height, width)))
    size = (long_side, 512) if width > height else (512, long_side)
    resized = np.asarray(Image.fromarray(img).resize(size, Image.BICUBIC))
    assert side == 512 and (top == 0 if width >= height else left == 0)
    np.testing.assert_array_equal(gt, resized[top:top + 512, left:left + 512])


@pytest.mark.parametrize('name', ['celebahq', 'places'])
def test_mask_folder_layout(tmp_path, name):
    """LaMa's gen_mask_dataset.py output: only images are samples, each with its mask file."""
    from mmagic.registry import DATASETS as MM_DATASETS
    cfg = _base(name)
    folder = tmp_path / 'random_thick'
    folder.mkdir()
    masks = {}
    for i, photo in enumerate(('astronaut', 'chelsea')):
        stem = f'{i}_crop000'
        _write_rgb(folder / f'{stem}.png', sample_image(photo, 64))
        mask = np.zeros((64, 64), np.uint8)
        mask[8 + i * 10:30 + i * 10, 10:40] = 255
        cv2.imwrite(str(folder / f'{stem}_mask000.png'), mask)
        masks[stem] = mask
    loader = cfg.test_dataloader_mask_files[0]
    dataset = MM_DATASETS.build(dict(loader.dataset, data_root=str(tmp_path),
                                     data_prefix=dict(gt='random_thick', mask='random_thick')))
    assert len(dataset) == 2
    for sample in dataset:
        stem = osp.splitext(osp.basename(sample['data_samples'].gt_path))[0]
        np.testing.assert_array_equal(np.asarray(sample['data_samples'].mask)[0],
                                      masks[stem] / 255)
