"""LaMa-style evaluation folders and the dataset that leaves out the images LaMa leaves out.

The Places configs evaluate either generated samples (``test_dataloader``: ``LamaEvalDataset``
+ ``LamaEvalSample``) or LaMa-style folders (``test_dataloader_mask_files``); a folder written
by :func:`diffir_mm.datasets.write_eval_mask_folder` must give both routes the same images,
crops and masks, and the same images left out.
"""
import json
import os
import os.path as osp

import cv2
import numpy as np
import pytest
from mmengine import Config

from helpers import REPO_ROOT, file_bytes

PLACES = osp.join(REPO_ROOT, 'configs', '_base_', 'datasets', 'places_inpaint.py')
# (skimage photo, height, width) of the sources: 4:3, 3:4, a small one (enlarged), odd sizes
PHOTOS = [('coffee', 300, 400), ('chelsea', 400, 300), ('rocket', 213, 320),
          ('astronaut', 517, 601)]


def _places():
    import diffir_mm.registration  # noqa: F401
    from mmengine.registry import init_default_scope
    init_default_scope('mmagic')
    return Config.fromfile(PLACES)


def _photo(name, height, width):
    import skimage.data
    img = getattr(skimage.data, name)()[..., :3]
    return cv2.resize(img, (width, height), interpolation=cv2.INTER_AREA)


def _write_sources(folder, names_and_photos, ext='.jpg'):
    os.makedirs(folder, exist_ok=True)
    for stem, (photo, height, width) in names_and_photos:
        assert cv2.imwrite(osp.join(folder, stem + ext), _photo(photo, height, width)[..., ::-1])


def _left_out_name(rule, height, width):
    """A file name whose image LaMa's rule leaves out at this size (found by trying names)."""
    for i in range(5000):
        name = f'lost{i:04d}.jpg'
        if rule.sample_source(name, height, width) is None:
            return name
    raise AssertionError('no left-out image among 5000 names')


def _arrays(sample):
    data = sample['data_samples']
    return (np.asarray(sample['inputs']), np.asarray(data.gt_img), np.asarray(data.mask))


def test_generated_and_file_evaluations_agree(tmp_path):
    """Same samples from the generated pipeline and from the folder the writer made."""
    from mmagic.registry import DATASETS
    from diffir_mm.datasets import write_eval_mask_folder
    from diffir_mm.datasets.transforms.lama_eval import LamaEvalRule
    from diffir_mm.evaluation.metrics import ImageCount
    cfg = _places()
    rule = LamaEvalRule('thick_512', cfg.eval_mask_seed, cfg.eval_size)
    lost = osp.splitext(_left_out_name(rule, 300, 400))[0]
    sources = [(f'p{i}', photo) for i, photo in enumerate(PHOTOS)] + [(lost, PHOTOS[0])]
    hires = tmp_path / 'evaluation' / 'hires'
    _write_sources(str(hires), sources)
    summary = write_eval_mask_folder(str(hires), str(tmp_path / 'evaluation' / 'random_thick_512'),
                                     'thick_512', cfg.eval_mask_seed, cfg.eval_size)
    assert summary.written == len(PHOTOS) and summary.dropped == [str(hires / f'{lost}.jpg')]

    generated = DATASETS.build(dict(cfg.test_dataloader[1].dataset, data_root=str(tmp_path)))
    files = DATASETS.build(dict(cfg.test_dataloader_mask_files[1].dataset,
                                data_root=str(tmp_path)))
    assert len(generated) == len(files) == len(PHOTOS)
    assert [osp.basename(p) for p in generated.metainfo['dropped_images']] == [f'{lost}.jpg']
    by_stem = {}
    for sample in files:
        stem = osp.basename(sample['data_samples'].gt_path)[:-len('_crop000.png')]
        by_stem[stem] = _arrays(sample)
    for sample in generated:
        stem = osp.splitext(osp.basename(sample['data_samples'].gt_path))[0]
        for ours, from_file in zip(_arrays(sample), by_stem.pop(stem)):
            assert ours.shape[-2:] == (512, 512)
            np.testing.assert_array_equal(ours, from_file)
    assert not by_stem

    count = ImageCount(prefix='Places-thick512')
    count.dataset_meta = generated.metainfo
    count.process([], [{}] * len(generated))
    assert count.compute_metrics(count.results) == dict(ImageCount=len(PHOTOS), DroppedImages=1)


def test_dataset_needs_one_sample_step(tmp_path):
    from mmagic.registry import DATASETS
    cfg = _places()
    _write_sources(str(tmp_path / 'hires'), [('a', PHOTOS[0])])
    dataset = dict(cfg.test_dataloader[0].dataset, data_root=str(tmp_path),
                   data_prefix=dict(gt='hires'), pipeline=cfg.mask_file_pipeline)
    with pytest.raises(ValueError, match='exactly one LamaEvalSample step'):
        DATASETS.build(dataset)


def test_writer_resumes_and_refuses_other_folders(tmp_path):
    from diffir_mm.datasets import write_eval_mask_folder
    from diffir_mm.datasets.eval_mask_folder import MANIFEST_NAME
    src, out = tmp_path / 'src', tmp_path / 'out'
    _write_sources(str(src), [(f'img{i}', PHOTOS[i % 2]) for i in range(4)], ext='.png')
    calls = []
    first = write_eval_mask_folder(str(src), str(out), 'thin_256', 7, short_side=256,
                                   progress=lambda done, total: calls.append((done, total)))
    assert calls == [(i, 4) for i in range(1, 5)]
    assert first.written + len(first.dropped) == 4 and first.skipped == 0
    made = {name: file_bytes(out / name) for name in os.listdir(out) if name != MANIFEST_NAME}
    assert len(made) == 2 * first.written and not [n for n in made if n.endswith('.tmp')]
    for name in made:
        if name.endswith('_mask000.png'):
            mask = cv2.imread(str(out / name), cv2.IMREAD_UNCHANGED)
            assert mask.shape == (256, 256) and set(np.unique(mask)) <= {0, 255}
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    assert manifest['finished'] and manifest['seed'] == 7 and manifest['preset'] == 'thin_256'

    again = write_eval_mask_folder(str(src), str(out), 'thin_256', 7, short_side=256)
    assert (again.written, again.skipped, again.dropped) == (0, first.written, first.dropped)
    assert {n: file_bytes(out / n) for n in made} == made
    victim = sorted(n for n in made if not n.endswith('_mask000.png'))[0]
    os.remove(out / victim)  # an interrupted run: resume writes what is missing
    resumed = write_eval_mask_folder(str(src), str(out), 'thin_256', 7, short_side=256)
    assert resumed.written == 1 and file_bytes(out / victim) == made[victim]

    with pytest.raises(ValueError, match='was made with'):
        write_eval_mask_folder(str(src), str(out), 'thin_256', 8, short_side=256)
    foreign = tmp_path / 'foreign'
    foreign.mkdir()
    (foreign / 'notes.txt').write_text('mine')
    with pytest.raises(ValueError, match='not empty'):
        write_eval_mask_folder(str(src), str(foreign), 'thin_256', 7, short_side=256)
    assert (foreign / 'notes.txt').read_text() == 'mine' and len(os.listdir(foreign)) == 1
    with pytest.raises(FileNotFoundError, match='source folder not found'):
        write_eval_mask_folder(str(tmp_path / 'nothing'), str(tmp_path / 'o2'), 'thin_256', 7)
    with pytest.raises(ValueError, match='must differ'):
        write_eval_mask_folder(str(src), str(src), 'thin_256', 7)
