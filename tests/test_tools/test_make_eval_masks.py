"""``tools/make_eval_masks.py``: LaMa-style evaluation folders from the Places config's rule."""
import importlib.util
import json
import os
from pathlib import Path

import cv2
import numpy as np
from mmengine import Config

from helpers import REPO_ROOT, sample_image

TOOL = Path(REPO_ROOT) / 'tools' / 'make_eval_masks.py'


def _tool():
    spec = importlib.util.spec_from_file_location('make_eval_masks', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_writes_lama_layout_with_the_config_seed(tmp_path, capsys):
    from diffir_mm.datasets.eval_mask_folder import MANIFEST_NAME
    src, out = tmp_path / 'hires', tmp_path / 'random_thin_512'
    src.mkdir()
    for name in ('astronaut', 'coffee'):
        assert cv2.imwrite(str(src / f'{name}.jpg'), sample_image(name, 96)[..., ::-1])
    tool = _tool()
    assert tool.main([str(src), str(out), '--preset', 'thin_512']) == 0
    cfg = Config.fromfile(str(tool.PLACES_CONFIG))
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    assert (manifest['seed'], manifest['short_side']) == (cfg.eval_mask_seed, cfg.eval_size)
    stems = {name[:-len('.png')] for name in os.listdir(out) if name.endswith('_crop000.png')}
    assert stems <= {'astronaut_crop000', 'coffee_crop000'}
    for stem in stems:
        image = cv2.imread(str(out / f'{stem}.png'))
        mask = cv2.imread(str(out / f'{stem}_mask000.png'), cv2.IMREAD_UNCHANGED)
        assert image.shape == (512, 512, 3) and mask.shape == (512, 512)
        assert set(np.unique(mask)) == {0, 255}
    captured = capsys.readouterr()
    assert f'{len(stems)} written' in captured.out and '2/2 images' in captured.err


def test_bad_input_is_one_error_line(tmp_path, capsys):
    tool = _tool()
    assert tool.main([str(tmp_path / 'missing'), str(tmp_path / 'out'), '--preset',
                      'thick_512']) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith('error: source folder not found')
    (tmp_path / 'src').mkdir()
    assert tool.main([str(tmp_path / 'src'), str(tmp_path / 'out'), '--preset', 'thick_512',
                      '--config', str(tmp_path / 'none.py')]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith('error: cannot take eval_mask_seed')
