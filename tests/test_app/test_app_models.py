"""diffir_mm.app.models and .launch: which models the app offers, and how they load."""
import os
import time

import pytest
import torch
from helpers import mmengine_checkpoint, tiny_net

from diffir_mm.app.launch import build_parser, collect_models, main
from diffir_mm.app.models import (ModelCache, ModelSource, find_demo_models, source_from_path,
                                  work_dir_source)


def _work_dir(folder, preset='deblur', iters=(1, 2), config=True, moved=False):
    """An mmengine work dir as tools/train.py leaves it (last_checkpoint, dumped config)."""
    folder.mkdir(parents=True)
    for i in iters:
        torch.save(mmengine_checkpoint(tiny_net(preset, seed=i)), folder / f'iter_{i}.pth')
        time.sleep(0.01)
    named = f'/elsewhere/iter_{iters[-1]}.pth' if moved else str(folder / f'iter_{iters[-1]}.pth')
    (folder / 'last_checkpoint').write_text(named)
    if config:
        (folder / 'diffir_demo_s2.py').write_text('model = dict()\n')
    return folder


def test_work_dir_is_its_last_checkpoint_and_dumped_config(tmp_path):
    folder = _work_dir(tmp_path / 'run')
    source = work_dir_source(str(folder))
    assert source == ModelSource('run', checkpoint=str(folder / 'iter_2.pth'),
                                 config=str(folder / 'diffir_demo_s2.py'))
    moved = _work_dir(tmp_path / 'moved', moved=True, config=False)  # demo_out copied away
    assert work_dir_source(str(moved)).checkpoint == str(moved / 'iter_2.pth')
    (tmp_path / 'empty').mkdir()
    assert work_dir_source(str(tmp_path / 'empty')) is None


def test_demo_models_are_found_in_demo_out(tmp_path):
    demo = tmp_path / 'demo_out'
    _work_dir(demo / 'deblur' / 'work_dirs' / 's2')
    time.sleep(0.02)
    _work_dir(demo / 'sr' / 'work_dirs' / 's2', preset='sr_x4')
    _work_dir(demo / 'inpaint' / 'work_dirs' / 's1')  # stage 1 only: not a restoration model
    found = find_demo_models(str(demo))
    assert [s.label for s in found] == ['demo: sr', 'demo: deblur']  # newest first
    assert found[0].checkpoint == str(demo / 'sr' / 'work_dirs' / 's2' / 'iter_2.pth')
    assert source_from_path(str(demo)) == found
    args = build_parser().parse_args(['--demo-dir', str(demo)])
    assert list(collect_models(args)) == ['demo: sr', 'demo: deblur']


def test_paths_and_options_name_models(tmp_path):
    ckpt = tmp_path / 'a.pth'
    torch.save(mmengine_checkpoint(tiny_net('deblur')), ckpt)
    assert source_from_path(str(ckpt), task='deblur') == [
        ModelSource('a.pth', checkpoint=str(ckpt), task='deblur')]
    (tmp_path / 'empty').mkdir()
    for path, message in [(tmp_path / 'missing.pth', 'no such file or folder'),
                          (tmp_path / 'empty', 'no checkpoint')]:
        with pytest.raises(ValueError, match=message):
            source_from_path(str(path))
    args = build_parser().parse_args(['--checkpoint', str(ckpt), '--model', str(ckpt),
                                      '--demo-dir', str(tmp_path / 'none')])
    assert list(collect_models(args)) == ['a.pth']  # the same model once


def test_cache_keeps_one_model_per_device(tmp_path):
    paths = []
    for preset in ('deblur', 'inpaint'):
        paths.append(tmp_path / f'{preset}.pth')
        torch.save(mmengine_checkpoint(tiny_net(preset)), paths[-1])
    a, b = (ModelSource(p.name, checkpoint=str(p)) for p in paths)
    cache = ModelCache()
    first = cache.get(a, 'cpu')
    assert cache.get(a, 'cpu') is first and first.task == 'deblur'
    assert cache.get(b, 'cpu').task == 'inpaint'
    assert cache.get(a, 'cpu') is not first  # evicted by b, loaded again


@pytest.mark.parametrize('argv,message', [
    (['--port', '0'], '--port must be between 1 and 65535'),
    (['--per-device', '0'], '--per-device must be >= 1'),
    (['--config', 'x.py'], '--config needs --checkpoint'),
    (['--model', 'MISSING'], 'MISSING: no such file or folder'),
])
def test_launch_setup_errors_are_one_line(argv, message, capsys):
    assert main(argv + ['--demo-dir', os.devnull]) == 2
    err = capsys.readouterr().err
    assert err.count('error:') == 1 and message in err and 'Traceback' not in err
