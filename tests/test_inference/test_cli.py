"""diffir-restore: end-to-end runs (in-process and as a subprocess) including every bad input."""
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch
from helpers import file_bytes, write

from diffir_mm.cli.restore import build_parser, main

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOOL = os.path.join(ROOT, 'tools', 'restore.py')


def _read(path):
    return cv2.imread(os.fspath(path), cv2.IMREAD_UNCHANGED)


def _lines(text, kind):
    return [ln for ln in text.splitlines() if ln.startswith(kind + ':')]


def _snapshot(folder):
    return {name: file_bytes(os.path.join(folder, name)) for name in sorted(os.listdir(folder))
            if os.path.isfile(os.path.join(folder, name))}


def _run(args):
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONWARNINGS='ignore')
    return subprocess.run([sys.executable, TOOL, *map(str, args)], capture_output=True,
                          text=True, env=env, cwd=ROOT, timeout=300)


@pytest.fixture
def messy_inputs(tmp_path, rng):
    """A folder with good and bad inputs, plus an empty folder."""
    src = tmp_path / 'in'
    src.mkdir()
    write(src / 'rgb.png', rng.integers(0, 256, (40, 48, 3), dtype=np.uint8))
    write(src / 'odd.png', rng.integers(0, 256, (37, 53, 3), dtype=np.uint8))  # not a multiple
    write(src / 'gray.png', rng.integers(0, 256, (33, 21), dtype=np.uint8))
    write(src / 'rgba.png', rng.integers(0, 256, (24, 24, 4), dtype=np.uint8))
    write(src / 'deep.png', rng.integers(0, 65536, (24, 16, 3), dtype=np.uint16))
    write(src / 'tiny.jpg', rng.integers(0, 256, (3, 5, 3), dtype=np.uint8))  # < minimum
    (src / 'corrupt.png').write_bytes(b'\x89PNG\r\n\x1a\n' + b'\x00' * 40)
    (src / 'readme.txt').write_text('not an image; ignored in folders')
    (tmp_path / 'empty').mkdir()
    return tmp_path


def test_cli_subprocess_bad_inputs_do_not_stop_the_batch(messy_inputs, ckpt_dir):
    src, out = messy_inputs / 'in', messy_inputs / 'out'
    before = _snapshot(src)
    proc = _run([src, messy_inputs / 'empty', messy_inputs / 'missing.png',
                 str(messy_inputs / 'nothing' / '*.png'), '-o', out, '--checkpoint',
                 ckpt_dir / 'deblur.pth', '--batch-size', '2'])
    assert proc.returncode == 1, proc.stderr
    errors = _lines(proc.stderr, 'error')
    assert len(errors) == 4, proc.stderr
    assert any('empty: folder contains no images' in e for e in errors)
    assert any('missing.png: no such file or directory' in e for e in errors)
    assert any('no images match this pattern' in e for e in errors)
    assert any('corrupt.png: cannot decode image' in e for e in errors)
    assert 'libpng' not in proc.stderr and 'Traceback' not in proc.stderr
    notes = '\n'.join(_lines(proc.stderr, 'note'))
    assert 'gray.png: grayscale input' in notes
    assert 'rgba.png: RGBA input' in notes
    assert 'deep.png: 16-bit input' in notes
    assert 'tiny.jpg: 5x3 is smaller than the network minimum 8x8' in notes
    assert 'odd.png: 53x37 is not a multiple of 8' in notes
    assert 'done: 6 restored, 4 failed' in proc.stderr
    assert _snapshot(src) == before  # inputs untouched
    written = sorted(os.listdir(out))
    assert written == ['deep.png', 'gray.png', 'odd.png', 'rgb.png', 'rgba.png', 'tiny.jpg']
    assert _read(out / 'gray.png').shape == (33, 21)
    rgba = _read(out / 'rgba.png')
    assert rgba.shape == (24, 24, 4)
    np.testing.assert_array_equal(rgba[..., 3], _read(src / 'rgba.png')[..., 3])
    assert _read(out / 'deep.png').dtype == np.uint16
    assert _read(out / 'tiny.jpg').shape == (3, 5, 3)
    assert _read(out / 'odd.png').shape == (37, 53, 3)


@pytest.mark.parametrize('task,ckpt,message', [
    ('deblur', 'sr_x2.pth', 'holds a stage-2 sr x2 model, dim=8, but a stage-2 deblur model'),
    ('sr', 'sr_x2.pth', 'holds a stage-2 sr x2 model, dim=8, but a stage-2 sr x4 model'),
])
def test_cli_subprocess_wrong_task_or_scale_checkpoint(tmp_path, ckpt_dir, rng, task, ckpt,
                                                       message):
    img = write(tmp_path / 'a.png', rng.integers(0, 256, (16, 16, 3), dtype=np.uint8))
    proc = _run([img, '-o', tmp_path / 'out', '--task', task, '--checkpoint', ckpt_dir / ckpt])
    assert proc.returncode == 2
    errors = _lines(proc.stderr, 'error')
    assert len(errors) == 1 and message in errors[0], proc.stderr
    assert proc.stderr.strip().count('\n') == 0
    assert not (tmp_path / 'out').exists()


def test_cli_sr_with_tiles_compare_ext_and_suffix(tmp_path, ckpt_dir, rng, capsys):
    img = write(tmp_path / 'lr.png', rng.integers(0, 256, (30, 44, 3), dtype=np.uint8))
    rc = main([img, '-o', str(tmp_path / 'out'), '--task', 'sr', '--scale', '2', '--checkpoint',
               str(ckpt_dir / 'sr_x2.pth'), '--tile', '16', '--tile-overlap', '4',
               '--tile-batch', '3', '--compare', '--ext', 'jpg', '--suffix', '_x2'])
    err = capsys.readouterr().err
    assert rc == 0, err
    assert sorted(os.listdir(tmp_path / 'out')) == ['lr_x2.jpg', 'lr_x2_compare.jpg']
    assert _read(tmp_path / 'out' / 'lr_x2.jpg').shape == (60, 88, 3)
    assert _read(tmp_path / 'out' / 'lr_x2_compare.jpg').shape == (60, 176, 3)
    assert 'tile 16/4' in err


def test_cli_refuses_to_overwrite_inputs(tmp_path, ckpt_dir, rng, capsys):
    src = tmp_path / 'photos'
    src.mkdir()
    write(src / 'a.png', rng.integers(0, 256, (16, 16, 3), dtype=np.uint8))
    write(src / 'b.png', rng.integers(0, 256, (16, 16, 3), dtype=np.uint8))
    before = _snapshot(src)
    rc = main([str(src), '-o', str(src), '--checkpoint', str(ckpt_dir / 'deblur.pth')])
    err = capsys.readouterr().err
    assert rc == 1
    assert len([e for e in _lines(err, 'error') if 'refusing to overwrite' in e]) == 2
    assert _snapshot(src) == before
    # with a suffix the same folder is fine, and nothing else changes
    rc = main([str(src / 'a.png'), '-o', str(src), '--checkpoint', str(ckpt_dir / 'deblur.pth'),
               '--suffix', '_restored'])
    assert rc == 0
    assert sorted(os.listdir(src)) == ['a.png', 'a_restored.png', 'b.png']
    assert file_bytes(src / 'a.png') == before['a.png']


def test_cli_output_name_collisions_are_reported(tmp_path, ckpt_dir, rng, capsys):
    for sub in ('x', 'y'):
        (tmp_path / sub).mkdir()
        write(tmp_path / sub / 'same.png', rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
    rc = main([str(tmp_path / 'x'), str(tmp_path / 'y'), '-o', str(tmp_path / 'out'),
               '--checkpoint', str(ckpt_dir / 'deblur.pth')])
    err = capsys.readouterr().err
    assert rc == 1
    assert len(_lines(err, 'error')) == 1 and 'would also be written for' in err
    assert os.listdir(tmp_path / 'out') == ['same.png']


def test_cli_same_seed_identical_and_batching_consistent(tmp_path, ckpt_dir, rng, capsys):
    src = tmp_path / 'in'
    src.mkdir()
    for i in range(3):
        write(src / f'{i}.png', rng.integers(0, 256, (24, 24, 3), dtype=np.uint8))
    ck = str(ckpt_dir / 'deblur_ours.pth')
    assert main([str(src / '*.png'), '-o', str(tmp_path / 'a'), '--checkpoint', ck,
                 '--seed', '11']) == 0
    assert main([str(src), '-o', str(tmp_path / 'b'), '--checkpoint', ck, '--seed', '11',
                 '--batch-size', '3']) == 0
    assert main([str(src), '-o', str(tmp_path / 'c'), '--checkpoint', ck, '--seed', '11']) == 0
    capsys.readouterr()
    for i in range(3):
        a = _read(tmp_path / 'a' / f'{i}.png').astype(int)
        b = _read(tmp_path / 'b' / f'{i}.png').astype(int)
        assert np.abs(a - b).max() <= 1  # batched forward: float rounding only
        assert file_bytes(tmp_path / 'a' / f'{i}.png') == file_bytes(tmp_path / 'c' / f'{i}.png')


def test_cli_fp16_fallback_message(tmp_path, ckpt_dir, rng, capsys, monkeypatch):
    from diffir_mm.archs import DiffIRS2Net
    original = DiffIRS2Net.restore

    def nan_in_fp16(self, lq, prior):
        out = original(self, lq, prior)
        return out * float('nan') if torch.is_autocast_enabled(lq.device.type) else out

    monkeypatch.setattr(DiffIRS2Net, 'restore', nan_in_fp16)
    img = write(tmp_path / 'a.png', rng.integers(0, 256, (16, 16, 3), dtype=np.uint8))
    rc = main([img, '-o', str(tmp_path / 'out'), '--checkpoint', str(ckpt_dir / 'deblur.pth'),
               '--precision', 'fp16'])
    err = capsys.readouterr().err
    assert rc == 0, err
    warns = _lines(err, 'warning')
    assert len(warns) == 1 and 'NaN/Inf values in fp16; recomputed in fp32' in warns[0]
    out = _read(tmp_path / 'out' / 'a.png')
    assert out.shape == (16, 16, 3) and out.max() > 0  # not a black image


def test_cli_inpainting_with_mask_dir(tmp_path, ckpt_dir, rng, capsys):
    src, masks = tmp_path / 'in', tmp_path / 'masks'
    src.mkdir()
    masks.mkdir()
    img = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    write(src / 'a.png', img)
    write(src / 'b.png', img)
    mask = np.zeros((32, 32), np.uint8)
    mask[8:16, 8:24] = 255
    write(masks / 'a.png', mask)
    rc = main([str(src), '-o', str(tmp_path / 'out'), '--checkpoint',
               str(ckpt_dir / 'inpaint.pth'), '--mask-dir', str(masks)])
    err = capsys.readouterr().err
    assert rc == 1
    errors = _lines(err, 'error')
    assert len(errors) == 1 and 'b.png: mask: no mask named b.*' in errors[0]
    out = _read(tmp_path / 'out' / 'a.png')
    np.testing.assert_array_equal(out[mask == 0], img[mask == 0])  # known pixels kept
    rc = main([str(src / 'a.png'), '-o', str(tmp_path / 'o2'), '--checkpoint',
               str(ckpt_dir / 'inpaint.pth')])
    assert rc == 2 and 'inpainting needs --mask' in capsys.readouterr().err


@pytest.mark.parametrize('argv,message', [
    (['--task', 'deblur'], '--checkpoint is required'),
    ([], 'give --checkpoint'),
    (['--task', 'deblur', '--random-init', '--tile', '16', '--tile-overlap', '16'],
     'must be smaller than --tile'),
    (['--task', 'deblur', '--random-init', '--ext', 'xyz'], 'OpenCV cannot write'),
    (['--checkpoint', 'MISSING'], 'checkpoint not found'),
])
def test_cli_setup_errors(tmp_path, rng, capsys, argv, message):
    img = write(tmp_path / 'a.png', rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
    argv = [str(tmp_path / a) if a == 'MISSING' else a for a in argv]
    rc = main([img, '-o', str(tmp_path / 'out'), *argv])
    err = capsys.readouterr().err
    assert rc == 2
    assert len(_lines(err, 'error')) == 1 and message in err
    assert not (tmp_path / 'out').exists()


def test_cli_random_init_full_preset_runs(tmp_path, rng, capsys):
    img = write(tmp_path / 'a.png', rng.integers(0, 256, (16, 24, 3), dtype=np.uint8))
    rc = main([img, '-o', str(tmp_path / 'out'), '--task', 'deblur', '--random-init', '-q'])
    err = capsys.readouterr().err
    assert rc == 0, err
    assert _read(tmp_path / 'out' / 'a.png').shape == (16, 24, 3)
    assert 'note:' not in err


def test_cli_defaults_pick_the_precision_per_device(tmp_path, rng, capsys):
    args = build_parser().parse_args(['x.png', '-o', 'out'])
    assert args.precision == 'auto' and args.compile == 'auto'
    img = write(tmp_path / 'a.png', rng.integers(0, 256, (16, 16, 3), dtype=np.uint8))
    rc = main([img, '-o', str(tmp_path / 'out'), '--task', 'deblur', '--random-init',
               '--device', 'cpu', '--no-progress'])
    err = capsys.readouterr().err
    assert rc == 0, err
    assert ', cpu, fp32 (auto), no tiling' in err  # auto is fp32 on the CPU
