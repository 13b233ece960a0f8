"""``--resume``'s choice of checkpoint (diffir_mm.engine.resume) on damaged work dirs."""
import os

import pytest
import torch

from diffir_mm.engine.errors import TrainingStopped
from diffir_mm.engine.resume import checkpoint_problem, resume_checkpoint


def _checkpoint(folder, it, broken=None):
    path = folder / f'iter_{it}.pth'
    torch.save({'meta': {'iter': it}, 'state_dict': {'w': torch.full((4, ), float(it))}}, path)
    if broken == 'truncated':
        os.truncate(path, path.stat().st_size // 2)
    elif broken == 'empty':
        os.truncate(path, 0)
    return path


def _resume(work):
    said = []
    chosen = resume_checkpoint(str(work), said.append)
    return chosen, said


def test_a_loadable_pointer_target_is_followed_silently(tmp_path):
    _checkpoint(tmp_path, 1)
    second = _checkpoint(tmp_path, 2)
    _checkpoint(tmp_path, 3)  # newer, but the pointer decides
    (tmp_path / 'last_checkpoint').write_text(str(second))
    assert _resume(tmp_path) == (str(second), [])


@pytest.mark.parametrize('pointer,why', [
    ('', 'last_checkpoint is empty'),
    (None, 'there is no last_checkpoint'),
    ('missing', 'iter_9.pth, which cannot be loaded (no such file)'),
    ('truncated', 'iter_3.pth, which cannot be loaded (truncated or corrupt file)'),
])
def test_a_broken_pointer_falls_back_to_the_newest_loadable_checkpoint(tmp_path, pointer, why):
    _checkpoint(tmp_path, 1)
    good = _checkpoint(tmp_path, 2)
    truncated = _checkpoint(tmp_path, 3, broken='truncated')
    targets = {'': '', 'missing': str(tmp_path / 'iter_9.pth'), 'truncated': str(truncated)}
    if pointer is not None:
        (tmp_path / 'last_checkpoint').write_text(targets[pointer])
    chosen, said = _resume(tmp_path)
    assert chosen == str(good)
    assert len(said) == 1 and why in said[0], said
    assert f'resuming from {good}, the newest loadable checkpoint' in said[0]
    if pointer != 'truncated':  # the truncated file is the pointer's, not skipped twice
        assert 'skipped: iter_3.pth: truncated or corrupt file)' in said[0]


def test_only_unloadable_checkpoints_stop_with_one_line(tmp_path):
    _checkpoint(tmp_path, 1, broken='empty')
    _checkpoint(tmp_path, 2, broken='truncated')
    (tmp_path / 'last_checkpoint').write_text('')
    with pytest.raises(TrainingStopped) as err:
        _resume(tmp_path)
    text = str(err.value)
    assert '\n' not in text
    assert text.startswith(f'--resume: no loadable checkpoint in {tmp_path} (')
    assert 'iter_2.pth: truncated or corrupt file' in text and 'iter_1.pth: empty file' in text


def test_an_empty_work_dir_starts_from_scratch(tmp_path):
    assert _resume(tmp_path) == (None, [
        f'--resume: there is no last_checkpoint and {tmp_path} holds no checkpoint; training '
        'starts from scratch'])
    (tmp_path / 'last_checkpoint').write_text('')
    chosen, said = _resume(tmp_path)
    assert chosen is None and said == [
        f'--resume: last_checkpoint is empty and {tmp_path} holds no checkpoint; training '
        'starts from scratch']


def test_checkpoint_problem_names_what_is_wrong(tmp_path):
    assert checkpoint_problem(str(_checkpoint(tmp_path, 1))) is None
    assert checkpoint_problem(str(tmp_path / 'nope.pth')) == 'no such file'
    assert checkpoint_problem(str(_checkpoint(tmp_path, 2, broken='empty'))) == 'empty file'
    weights = tmp_path / 'weights.pth'
    torch.save({'w': torch.zeros(1)}, weights)
    assert checkpoint_problem(str(weights)).startswith('not a training checkpoint')
