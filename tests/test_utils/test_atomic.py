"""write_bytes_atomic: all or nothing, nothing left behind."""
import os

import pytest

from diffir_mm.utils import atomic
from diffir_mm.utils.atomic import write_bytes_atomic


def test_writes_and_replaces(tmp_path):
    path = tmp_path / 'sub' / 'file.bin'
    write_bytes_atomic(path, b'one')
    write_bytes_atomic(path, b'two')
    assert path.read_bytes() == b'two'
    assert os.listdir(path.parent) == ['file.bin']


def test_a_failure_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / 'file.bin'
    path.write_bytes(b'old')

    def failing_replace(src, dst):
        raise OSError(28, 'No space left on device')

    monkeypatch.setattr(atomic.os, 'replace', failing_replace)
    with pytest.raises(OSError, match='No space'):
        write_bytes_atomic(path, b'new')
    assert path.read_bytes() == b'old'
    assert os.listdir(tmp_path) == ['file.bin']
