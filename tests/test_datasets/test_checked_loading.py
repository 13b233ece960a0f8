"""CheckedLoadImageFromFile: unreadable training images are named, skipped, counted, or stop."""
import os

import numpy as np
import pytest
import torch

from diffir_mm.datasets.transforms import CheckedLoadImageFromFile
from diffir_mm.engine.errors import TrainingStopped
from helpers import sample_image, write


@pytest.fixture
def files(tmp_path):
    """A good PNG, a truncated one, an empty file and a text file named .png."""
    good = write(tmp_path / 'good.png', sample_image('astronaut', 32))
    data = open(good, 'rb').read()
    paths = dict(good=good)
    for name, content in (('truncated', data[:len(data) // 2]), ('empty', b''),
                          ('text', b'not an image\n')):
        paths[name] = str(tmp_path / f'{name}.png')
        with open(paths[name], 'wb') as fh:
            fh.write(content)
    return paths


def _load(**kwargs):
    import uuid

    from mmengine.logging import MMLogger
    MMLogger.get_instance(uuid.uuid4().hex)  # the current logger, writing to the captured stdout
    return CheckedLoadImageFromFile(key='gt', channel_order='rgb', imdecode_backend='cv2',
                                    **kwargs)


def test_good_files_load_as_with_mmagic(files):
    from mmagic.datasets.transforms import LoadImageFromFile

    ours = _load()(dict(gt_path=files['good']))
    theirs = LoadImageFromFile(key='gt', channel_order='rgb', imdecode_backend='cv2')(
        dict(gt_path=files['good']))
    assert np.array_equal(ours['gt'], theirs['gt']) and ours.keys() == theirs.keys()


def test_unreadable_files_are_skipped_and_named_once(files, capfd):
    load = _load()
    for _ in range(2):
        for name in ('truncated', 'empty', 'text'):
            assert load(dict(gt_path=files[name])) is None  # mmengine draws another sample
    assert load(dict(gt_path=files['good'])) is not None
    log = capfd.readouterr().out
    for name, reason in (('truncated', 'cannot decode image'), ('empty', 'empty file'),
                         ('text', 'cannot decode image')):
        assert log.count(files[name]) == 1, log
        assert f'skipped an unreadable training image: {files[name]}: {reason}' in log
    assert '(3 unreadable file(s), 3 skip(s) so far)' in log
    assert (load.loads, load.bad_loads) == (7, 6)


def test_strict_mode_stops_at_the_first_unreadable_file(files):
    load = _load(on_bad_file='error')
    assert load(dict(gt_path=files['good'])) is not None
    with pytest.raises(TrainingStopped, match=f"unreadable training image {files['empty']}: "
                       r"empty file \(on_bad_file='error' stops at the first\)"):
        load(dict(gt_path=files['empty']))


def test_too_many_unreadable_files_stop_training(files):
    load = _load(max_bad_share=0.25, min_loads=4)
    for name in ('good', 'text', 'good'):
        load(dict(gt_path=files[name]))
    with pytest.raises(TrainingStopped) as err:
        load(dict(gt_path=files['empty']))
    assert str(err.value) == (
        '2 of the 4 training images loaded were unreadable (50.0%, more than max_bad_share='
        f"0.25), the last {files['empty']}: empty file")


def test_a_failure_of_a_readable_file_keeps_its_error(files):
    with pytest.raises(Exception) as err:
        _load(color_type='no-such-flag')(dict(gt_path=files['good']))
    assert not isinstance(err.value, TrainingStopped)
    with pytest.raises(ValueError, match='on_bad_file'):
        _load(on_bad_file='ignore')


class _Stopping(torch.utils.data.Dataset):
    def __len__(self):
        return 2

    def __getitem__(self, index):
        raise TrainingStopped(f'unreadable training image /data/{index}.png: empty file')


def test_a_stop_in_a_dataloader_worker_is_one_line_in_the_main_process():
    loader = torch.utils.data.DataLoader(_Stopping(), num_workers=1)
    with pytest.raises(TrainingStopped) as err:
        next(iter(loader))
    assert str(err.value) == 'unreadable training image /data/0.png: empty file'
    assert os.linesep not in str(err.value)
