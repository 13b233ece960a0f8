"""tools/check_data.py: every unreadable file, non-RGB surprise and mismatched pair of a
config's folders, listed before a run; exit status 1 when anything is found."""
import os.path as osp
import shutil

import cv2
from helpers import (REPO_ROOT, TOOLS_DIR, make_paired_images, run_python, write,
                     write_broken_images, write_tiny_config)

CHECK = osp.join(TOOLS_DIR, 'check_data.py')


def _check(config, *options):
    args = [CHECK, config, '--workers', '2'] + (['--cfg-options', *options] if options else [])
    return run_python(args, check=False)


def test_lists_every_problem_and_fails(tmp_path):
    root = tmp_path / 'data'
    make_paired_images(str(root), num=4, size=32, mode='blur')
    broken = write_broken_images(root / 'gt', ('truncated', 'empty', 'text'))
    for kind in broken:  # each broken GT has a good LQ partner
        shutil.copy(root / 'lq' / 'astronaut.png', root / 'lq' / f'{kind}.png')
    write_broken_images(root / 'lq', ('jpeg', ))
    write(root / 'gt' / 'jpeg.jpg', cv2.imread(str(root / 'gt' / 'coffee.png')))
    write(root / 'gt' / 'orphan.png', cv2.imread(str(root / 'gt' / 'coffee.png')))
    gray = cv2.imread(str(root / 'gt' / 'chelsea.png'), cv2.IMREAD_GRAYSCALE)
    write(root / 'gt' / 'chelsea.png', gray)
    write(root / 'lq' / 'rocket.png', cv2.resize(cv2.imread(str(root / 'lq' / 'rocket.png')),
                                                 (24, 24)))
    config = write_tiny_config(str(tmp_path / 'cfg.py'), str(root), crop=16)
    proc = _check(config)
    assert proc.returncode == 1, proc.stdout
    out = proc.stdout
    for name in ('truncated.png', 'empty.png', 'text.png'):
        assert f"{root / 'gt' / name}:" in out
    assert f"{root / 'lq' / 'jpeg.jpg'}: truncated JPEG" in out
    assert f"{root / 'gt' / 'orphan.png'}: GT without its LQ" in out
    assert f"{root / 'gt' / 'chelsea.png'}: grayscale" in out
    assert f"{root / 'gt' / 'rocket.png'}: GT is 32x32, LQ is 24x24" in out
    assert 'check_data.py: 7 problem(s)' in out
    assert 'Traceback' not in out


def test_clean_data_of_a_prepared_fine_tune_passes(tmp_path):
    make_paired_images(str(tmp_path / 'raw'), num=4, size=64, mode='blur')
    data = tmp_path / 'own_pairs'
    run_python([osp.join(TOOLS_DIR, 'prepare_data.py'), 'pairs', str(tmp_path / 'raw' / 'lq'),
                str(tmp_path / 'raw' / 'gt'), str(data), '--crop', '48'])
    config = osp.join(REPO_ROOT, 'configs', 'diffir_deblur_finetune.py')
    options = [f'{loader}.dataset.data_root={data}'
               for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader')]
    proc = _check(config, *options, 'train_dataloader.dataset.pipeline.3.gt_patch_size=48')
    assert proc.returncode == 0, proc.stdout
    assert 'train_dataloader.dataset: 3 samples' in proc.stdout
    assert 'val_dataloader.dataset: 1 samples' in proc.stdout
    # the recipe's own patch (256) is larger than these 64x64 pairs: named, not a traceback
    proc = _check(config, *options)
    assert proc.returncode == 1
    assert 'smaller than the training patch 256x256' in proc.stdout


def test_missing_folder_is_one_line(tmp_path):
    config = write_tiny_config(str(tmp_path / 'cfg.py'), str(tmp_path / 'nowhere'))
    proc = _check(config)
    assert proc.returncode == 1
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
    assert len(lines) == 1 and 'error: data folder not found' in lines[0], proc.stdout
