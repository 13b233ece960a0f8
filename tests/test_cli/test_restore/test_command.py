"""diffir_mm.cli.restore.command: the steps of main() and their exit statuses; the entry points
(console script, ``python -m``, tools/restore.py) all run it."""
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
from helpers import REPO_ROOT, official_checkpoint, subprocess_env, tiny_net, write

import diffir_mm.cli.restore as restore_cli
from diffir_mm.cli.restore import command
from diffir_mm.cli.restore.errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_SETUP


@pytest.fixture(scope='module')
def deblur(tmp_path_factory):
    path = tmp_path_factory.mktemp('ckpt') / 'deblur.pth'
    torch.save(official_checkpoint(tiny_net('deblur')), path)
    return str(path)


@pytest.fixture
def photo(tmp_path):
    return write(tmp_path / 'a.png', np.random.default_rng(0).integers(0, 256, (8, 8, 3),
                                                                       np.uint8))


def test_the_console_script_names_main():
    with open(os.path.join(REPO_ROOT, 'setup.py'), encoding='utf-8') as fh:
        target = re.search(r"'diffir-restore=([\w.]+):(\w+)'", fh.read())
    assert target.groups() == ('diffir_mm.cli.restore', 'main')
    assert restore_cli.main is command.main


def test_a_setup_problem_is_one_line_and_touches_nothing(tmp_path, photo, deblur, capsys):
    out = tmp_path / 'out'
    assert command.main([photo, '-o', str(out), '--checkpoint', deblur, '--mask',
                         photo]) == EXIT_SETUP
    assert capsys.readouterr().err == ('error: --mask/--mask-dir only apply to inpainting '
                                       '(model: deblur)\n')
    assert not out.exists()


def test_no_images(tmp_path, deblur, capsys):
    (tmp_path / 'empty').mkdir()
    assert command.main([str(tmp_path / 'empty'), '-o', str(tmp_path / 'out'), '-q',
                         '--checkpoint', deblur]) == EXIT_FAILED
    assert capsys.readouterr().err.splitlines() == [
        f'error: {tmp_path / "empty"}: folder contains no images', 'error: no images to process']


def test_ctrl_c_is_one_line(tmp_path, photo, deblur, capsys, monkeypatch):
    def interrupted(self, files):
        raise KeyboardInterrupt

    monkeypatch.setattr(command.Run, 'run', interrupted)
    assert command.main([photo, '-o', str(tmp_path / 'out'), '-q', '--checkpoint',
                         deblur]) == EXIT_INTERRUPTED
    assert capsys.readouterr().err == 'interrupted\n'


def test_threads(tmp_path, photo, deblur, capsys):
    before = torch.get_num_threads()
    try:
        assert command.main([photo, '-o', str(tmp_path / 'out'), '-q', '--checkpoint', deblur,
                             '--threads', '1']) == EXIT_OK
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    assert capsys.readouterr().err == 'done: 1 restored, 0 failed\n'


def test_python_m_and_the_tool_script_print_the_same_help():
    env = subprocess_env({'COLUMNS': '100'}, pythonpath=[REPO_ROOT])
    helps = [subprocess.run([sys.executable, *entry, '-h'], capture_output=True, text=True,
                            env=env, cwd=REPO_ROOT, timeout=300)
             for entry in (['-m', 'diffir_mm.cli.restore'], ['tools/restore.py'])]
    assert [h.returncode for h in helps] == [0, 0], helps[0].stderr + helps[1].stderr
    assert helps[0].stdout == helps[1].stdout
    assert helps[0].stdout.startswith('usage: diffir-restore ')
