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


def test_temporary_files_are_hidden_beside_the_file_and_name_their_writer(tmp_path):
    path = tmp_path / 'iter_5.pth'
    tmp = atomic.temp_path(path)
    assert os.path.dirname(tmp) == str(tmp_path)
    name = os.path.basename(tmp)
    assert name.startswith('.iter_5.pth.') and name.endswith('.tmp')
    assert f'.{os.getpid()}.' in name
    assert atomic.temp_path(path) != tmp  # unique


def test_stale_temporaries_of_dead_writers_are_removed(tmp_path):
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, '-c', 'import os; print(os.getpid())'],
                          capture_output=True, text=True, check=True)
    dead_pid = int(dead.stdout)
    stale = tmp_path / f'.out.png.{dead_pid}.0123abcd.tmp'
    mine = tmp_path / f'.out.png.{os.getpid()}.0123abcd.tmp'  # being written by this process
    other = [tmp_path / 'out.png', tmp_path / '.out.png.tmp', tmp_path / f'.x.{dead_pid}.zz.tmp']
    for path in [stale, mine] + other:
        path.write_bytes(b'x')
    assert atomic.remove_stale_temps(tmp_path) == [str(stale)]
    assert sorted(os.listdir(tmp_path)) == sorted(p.name for p in [mine] + other)
    assert atomic.remove_stale_temps(tmp_path / 'missing') == []


def test_stale_temporary_folders_of_dead_writers_are_removed(tmp_path):
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, '-c', 'import os; print(os.getpid())'],
                          capture_output=True, text=True, check=True)
    stale = tmp_path / f'.model.{int(dead.stdout)}.0123abcd.tmp'
    mine = tmp_path / f'.model.{os.getpid()}.0123abcd.tmp'
    for folder in (stale, mine):
        folder.mkdir()
        (folder / 'model.safetensors').write_bytes(b'x')
    assert atomic.remove_stale_temps(tmp_path) == [str(stale)]
    assert os.listdir(tmp_path) == [mine.name]


def test_replace_atomic_moves_a_complete_file_or_removes_it(tmp_path, monkeypatch):
    dst = tmp_path / 'graph.onnx'
    tmp = tmp_path / 'graph.part'
    tmp.write_bytes(b'graph')
    atomic.replace_atomic(tmp, dst)
    assert dst.read_bytes() == b'graph' and not tmp.exists()

    tmp.write_bytes(b'new')
    monkeypatch.setattr(atomic.os, 'replace', lambda src, dst: (_ for _ in ()).throw(
        OSError(28, 'No space left on device')))
    with pytest.raises(OSError):
        atomic.replace_atomic(tmp, dst)
    assert dst.read_bytes() == b'graph' and not tmp.exists()


def test_write_errors_are_one_line_with_the_free_space(tmp_path):
    full = atomic.describe_write_error(tmp_path / 'iter_2.pth',
                                       OSError(28, 'No space left on device'))
    assert full.startswith(f'cannot write {tmp_path / "iter_2.pth"}: No space left on device (')
    assert full.endswith(' free)') and '\n' not in full
    denied = atomic.describe_write_error(tmp_path / 'x', OSError(13, 'Permission denied'))
    assert denied == f'cannot write {tmp_path / "x"}: Permission denied'
    assert atomic.free_space(tmp_path / 'not' / 'there') != 'unknown'
