"""diffir_mm.cli.restore.run: reading, batching, the Restorer calls and progress, with a stand-in
model that records its calls (the real model runs in tests/test_inference/test_cli.py)."""
import warnings

import numpy as np
import pytest
from helpers import write

from diffir_mm.cli.restore.errors import Reporter
from diffir_mm.cli.restore.run import Batcher, Item, Run, read_mask
from diffir_mm.cli.restore.writing import OutputPlan, ResultWriter
from diffir_mm.inference.io import ImageRecord, read_image
from diffir_mm.inference.precision import PrecisionFallbackWarning


class RecordingRestorer:
    """Doubles each image's size; fails a batch that holds an all-black image; issues the
    ``warn`` warnings; records the sizes and masks of every batch."""

    def __init__(self, task='deblur', warn=()):
        self.task, self.input_multiple, self.warn = task, 8, warn
        self.batches, self.masks = [], []

    def restore_batch(self, images, masks=None, progress=None):
        self.batches.append([im.shape[:2] for im in images])
        self.masks.append(masks)
        for category, text in self.warn:
            warnings.warn(text, category)
        if progress is not None:
            progress(1, 3)
        if any(im.max() == 0 for im in images):
            raise RuntimeError('black image\nmore details')
        return [np.repeat(np.repeat(im, 2, 0), 2, 1) for im in images]


class Bar:
    def __init__(self):
        self.updates, self.postfix = 0, None

    def update(self, n):
        self.updates += n

    def set_postfix_str(self, text):
        self.postfix = text


def _item(h, w, name):
    return Item(path=name, out='o/' + name, record=ImageRecord(rgb=np.zeros((h, w, 3))))


def _paths(batches):
    return [[it.path for it in batch] for batch in batches]


def test_batcher_fills_batches_per_size():
    batcher = Batcher(2)
    assert batcher.add(_item(8, 8, 'a')) == []
    assert batcher.add(_item(16, 8, 'b')) == []
    assert _paths(batcher.add(_item(8, 8, 'c'))) == [['a', 'c']]
    assert batcher.add(_item(24, 8, 'd')) == []
    assert _paths(batcher.drain()) == [['b'], ['d']]


def test_batcher_bounds_the_waiting_images():
    batcher = Batcher(3)  # at most 4 x 3 images wait
    sizes = [(8, 8), (8, 16), (8, 16)] + [(16, 8 * (i + 1)) for i in range(9)]
    for i, size in enumerate(sizes):
        assert batcher.add(_item(*size, str(i))) == []
    assert _paths(batcher.add(_item(24, 8, 'thirteenth'))) == [['1', '2']]  # the fullest size
    assert [len(b) for b in batcher.drain()] == [1] * 11
    batcher = Batcher(2)
    for i in range(8):
        assert batcher.add(_item(8, 8 * (i + 1), str(i))) == []
    assert _paths(batcher.add(_item(16, 8, 'ninth'))) == [['0']]  # equals: the first-seen


def _run(tmp_path, restorer, batch_size=1, mask=None, mask_dir=None, quiet=False):
    reporter = Reporter(quiet=quiet)
    plan = OutputPlan(str(tmp_path / 'out'))
    run = Run(restorer, plan, ResultWriter(plan, reporter), reporter, batch_size=batch_size,
              mask=mask, mask_dir=mask_dir, progress=False)
    return run, reporter


def _images(folder, *arrays):
    folder.mkdir(exist_ok=True)
    return [write(folder / f'{i}.png', a) for i, a in enumerate(arrays)]


def _random(h, w, seed=0):
    return np.random.default_rng(seed).integers(1, 256, (h, w, 3), np.uint8)


def test_equal_sizes_are_batched_and_every_result_written(tmp_path, capsys):
    files = _images(tmp_path / 'in', _random(8, 8), _random(16, 8), _random(8, 8), _random(8, 8))
    restorer = RecordingRestorer()
    run, reporter = _run(tmp_path, restorer, batch_size=2)
    run.run(files)
    assert restorer.batches == [[(8, 8)] * 2, [(16, 8)], [(8, 8)]]
    assert sorted(p.name for p in (tmp_path / 'out').iterdir()) == ['0.png', '1.png', '2.png',
                                                                   '3.png']
    assert read_image(str(tmp_path / 'out' / '1.png')).size == (32, 16)
    assert (reporter.done, reporter.failed) == (4, 0)
    assert capsys.readouterr().err == ''


def test_a_failed_batch_is_retried_image_by_image(tmp_path, capsys):
    black = np.zeros((8, 8, 3), np.uint8)
    files = _images(tmp_path / 'in', _random(8, 8), black, _random(8, 8))
    restorer = RecordingRestorer()
    run, reporter = _run(tmp_path, restorer, batch_size=3)
    run.run(files)
    assert restorer.batches == [[(8, 8)] * 3, [(8, 8)], [(8, 8)], [(8, 8)]]
    assert (reporter.done, reporter.failed) == (2, 1)
    assert capsys.readouterr().err.splitlines() == [
        f'error: {files[1]}: restoration failed: RuntimeError: black image']
    assert sorted(p.name for p in (tmp_path / 'out').iterdir()) == ['0.png', '2.png']


def test_precision_fallbacks_are_one_line_per_batch_other_warnings_pass(tmp_path, capsys):
    files = _images(tmp_path / 'in', _random(8, 8), _random(8, 8, 1))
    text = 'the network produced NaN/Inf values in fp16; recomputed in fp32'
    restorer = RecordingRestorer(warn=[(PrecisionFallbackWarning, text)] * 3 +
                                 [(UserWarning, 'something else')])
    run, reporter = _run(tmp_path, restorer, batch_size=2)
    with pytest.warns(UserWarning, match='something else'):
        run.run(files)
    assert capsys.readouterr().err.splitlines() == [f'warning: {files[0]}, {files[1]}: {text}']
    assert reporter.done == 2


def test_refused_outputs_are_not_even_read(tmp_path, capsys):
    src = tmp_path / 'in'
    files = _images(src, _random(8, 8))
    (src / 'corrupt.png').write_bytes(b'\x89PNG\r\n\x1a\n')
    reporter = Reporter()
    plan = OutputPlan(str(src), protect=[*files, str(src / 'corrupt.png')])
    restorer = RecordingRestorer()
    Run(restorer, plan, ResultWriter(plan, reporter), reporter, progress=False).run(
        [files[0], str(src / 'corrupt.png')])
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and all('is an input file; refusing to overwrite it' in e for e in err)
    assert restorer.batches == [] and reporter.failed == 2


def test_unreadable_inputs_and_padding_notes(tmp_path, capsys):
    src = tmp_path / 'in'
    files = _images(src, _random(3, 5), _random(9, 16), _random(8, 16))
    (src / 'corrupt.png').write_bytes(b'\x89PNG\r\n\x1a\n' + b'\x00' * 40)
    run, reporter = _run(tmp_path, RecordingRestorer())
    run.run([*files, str(src / 'corrupt.png')])
    assert capsys.readouterr().err.splitlines() == [
        f'note: {files[0]}: 5x3 is smaller than the network minimum 8x8; padded and cropped back',
        f'note: {files[1]}: 16x9 is not a multiple of 8; padded (reflect) and cropped back',
        f'error: {src / "corrupt.png"}: cannot decode image (corrupt file or unsupported format)']
    assert (reporter.done, reporter.failed) == (3, 1)


def test_read_mask(tmp_path):
    masks = tmp_path / 'masks'
    masks.mkdir()
    holes = np.zeros((4, 6), np.uint8)
    holes[1:3, 2:5] = 255
    write(masks / 'a.png', holes)
    write(masks / 'grey.PNG', holes // 2 + 10)
    mask, path, remark = read_mask('photos/a.jpg', None, str(masks))
    assert path == str(masks / 'a.png') and remark is None
    assert mask.dtype == np.float32 and mask.tolist() == (holes > 0).astype(float).tolist()
    mask, path, remark = read_mask('photos/grey.png', None, str(masks))
    assert mask.all()  # every non-zero value is a hole
    assert remark == f'mask {path} is not binary (2 levels): every non-zero value is a hole ' \
                     '(official rule)'
    assert read_mask('x/any.png', str(masks / 'a.png'), None)[1] == str(masks / 'a.png')
    with pytest.raises(ValueError, match=f'^no mask named b.\\* in {masks}$'):
        read_mask('photos/b.png', None, str(masks))


def test_inpainting_masks_reach_the_model_and_bad_masks_fail_alone(tmp_path, capsys):
    src, masks = tmp_path / 'in', tmp_path / 'masks'
    files = _images(src, _random(8, 8), _random(8, 8), _random(12, 8))
    masks.mkdir()
    holes = np.zeros((8, 8), np.uint8)
    holes[2:4] = 255
    write(masks / '0.png', holes)
    write(masks / '2.png', np.zeros((8, 8), np.uint8))  # the image is 8x12
    restorer = RecordingRestorer(task='inpaint')
    run, reporter = _run(tmp_path, restorer, mask_dir=str(masks))
    run.run(files)
    assert capsys.readouterr().err.splitlines() == [
        f'error: {files[1]}: mask: no mask named 1.* in {masks}',
        f'note: {files[2]}: 8x12 is not a multiple of 8; padded (symmetric) and cropped back',
        f'error: {files[2]}: mask {masks / "2.png"} is 8x8, the image 8x12']
    assert len(restorer.masks) == 1 and restorer.masks[0][0].tolist() == (holes > 0).tolist()
    assert (reporter.done, reporter.failed) == (1, 2)


def test_progress_counts_images_and_shows_tiles(tmp_path):
    files = _images(tmp_path / 'in', _random(8, 8), _random(8, 8))
    run, reporter = _run(tmp_path, RecordingRestorer())
    reporter.bar = Bar()
    run.restore([run.prepare(f) for f in files])
    assert reporter.bar.updates == 2 and reporter.bar.postfix == 'tiles 1/3'
