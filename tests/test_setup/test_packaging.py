"""A non-editable ``pip install .`` from a copy outside the checkout serves the inferencer and CLI.

The fresh venv borrows the heavy dependencies of the project venv through a ``.pth`` file and
installs diffir-mm itself with ``--no-deps --no-build-isolation`` (no network). Everything runs
outside the checkout, so the configs can only come from the copy packaged in ``diffir_mm/.mim``.
"""
import os
import os.path as osp
import shutil
import subprocess
import sys
import venv

import cv2
from helpers import PYTHON, REPO_ROOT, run_command, sample_image, subprocess_env

PROBE = '''
import sys, torch
import diffir_mm.registration  # noqa: F401
from diffir_mm.archs import build_diffir
from mmagic.apis import MMagicInferencer
import diffir_mm
assert '/site-packages/' in diffir_mm.__file__, diffir_mm.__file__
torch.manual_seed(0)
net = build_diffir('deblur', stage=2)
torch.save({'state_dict': {f'{p}.{k}': v for p in ('generator', 'generator_ema')
                           for k, v in net.state_dict().items()}}, sys.argv[1])
inferencer = MMagicInferencer('diffir', model_setting=0, model_ckpt=sys.argv[1])
inferencer.infer(img=sys.argv[2], result_out_dir=sys.argv[3])
from diffir_mm.apis.inferencer import config_root
print('CONFIG', config_root())
'''


def test_pip_install_serves_inferencer_and_cli(tmp_path):
    source = tmp_path / 'src'
    files = subprocess.run(['git', 'ls-files', '-co', '--exclude-standard'], cwd=REPO_ROOT,
                           capture_output=True, text=True, check=True).stdout.split()
    for name in files:
        if osp.isfile(osp.join(REPO_ROOT, name)) and not name.startswith('.venv'):
            os.makedirs(source / osp.dirname(name), exist_ok=True)
            shutil.copy2(osp.join(REPO_ROOT, name), source / name)
    env_dir = tmp_path / 'venv'
    venv.create(env_dir, with_pip=True)
    site = subprocess.run([PYTHON, '-c', 'import site; print(site.getsitepackages()[0])'],
                          capture_output=True, text=True, check=True).stdout.strip()
    py = f'python{sys.version_info.major}.{sys.version_info.minor}'
    (env_dir / 'lib' / py / 'site-packages' / 'heavy.pth').write_text(site + '\n')
    env = subprocess_env()
    env.pop('PYTHONPATH', None)
    bin_dir = env_dir / 'bin'
    run_command([str(bin_dir / 'python'), '-m', 'pip', 'install', '-q', '--no-deps',
                 '--no-build-isolation', str(source)], env=env, cwd=str(tmp_path))
    packaged = env_dir / 'lib' / py / 'site-packages' / 'diffir_mm' / '.mim' / 'configs'
    assert (packaged / 'metafile.yml').is_file() and (packaged / '_base_').is_dir()

    photo = tmp_path / 'photo.png'
    cv2.imwrite(str(photo), sample_image('astronaut', 32)[..., ::-1])
    (tmp_path / 'probe.py').write_text(PROBE)
    out = tmp_path / 'out.png'
    proc = run_command([str(bin_dir / 'python'), 'probe.py', 'ckpt.pth', str(photo), str(out)],
                       env=env, cwd=str(tmp_path), timeout=900)
    config = proc.stdout.split('CONFIG ', 1)[1].strip()
    assert osp.join(config, 'configs') == str(packaged), config
    assert cv2.imread(str(out)).shape == (32, 32, 3)

    run_command([str(bin_dir / 'diffir-restore'), str(photo), '-o', str(tmp_path / 'cli'),
                 '--task', 'deblur', '--checkpoint', str(tmp_path / 'ckpt.pth')],
                env=env, cwd=str(tmp_path), timeout=900)
    restored = [f for f in os.listdir(tmp_path / 'cli') if f.endswith('.png')]
    assert len(restored) == 1
    assert cv2.imread(str(tmp_path / 'cli' / restored[0])).shape == (32, 32, 3)
