"""``import diffir_mm`` / ``diffir_mm.archs`` are plain PyTorch: no mm module, no import tricks.

Each case runs in a fresh interpreter in which mmagic, mmcv and mmengine are *installed but
blocked* (``sys.modules[name] = None`` makes any import of them fail), so a stray import anywhere
in the package fails the test instead of passing silently.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MM_PACKAGES = ('mmagic', 'mmcv', 'mmengine')
BLOCK = ''.join(f'sys.modules[{name!r}] = None\n' for name in MM_PACKAGES)


def _run_blocked(code: str) -> str:
    """Run ``code`` with the mm packages blocked; return its stdout (fails on error)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        filter(None, [str(REPO), os.environ.get('PYTHONPATH')])))
    env.pop('NO_ALBUMENTATIONS_UPDATE', None)
    probe = (f'import os, sys\n{BLOCK}{code}\n'
             'print("ENV:", os.environ.get("NO_ALBUMENTATIONS_UPDATE"))')
    result = subprocess.run([sys.executable, '-c', probe], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_blocking_really_blocks():
    """The probe itself: importing a blocked package fails in the child."""
    with pytest.raises(AssertionError, match='ModuleNotFoundError|ImportError'):
        _run_blocked('import mmagic')


@pytest.mark.parametrize('code', [
    'import diffir_mm',
    'import diffir_mm.archs',
    'import diffir_mm.archs\nfrom diffir_mm import load_official',
    'import diffir_mm.inference, diffir_mm.cli.restore, diffir_mm.utils.config_errors',
])
def test_import_touches_no_mm_module_and_sets_no_env(code: str):
    assert _run_blocked(code).strip().splitlines()[-1] == 'ENV: None'


def test_load_official_runs_with_mm_blocked(tmp_path):
    """``from diffir_mm import load_official`` loads and runs a (tiny, random) release file."""
    code = f'''
import torch
from diffir_mm import load_official
from diffir_mm.archs import build_diffir, ours_to_official
torch.manual_seed(0)
kw = dict(dim=8, num_blocks=[1, 1, 1, 1], num_refinement_blocks=1, n_encoder_res=1)
net = build_diffir('deblur', stage=2, **kw).eval()
path = {str(tmp_path / 'net_g.pth')!r}
official = ours_to_official(net.state_dict(), with_duplicates=True, net=net)
torch.save({{'params_ema': official}}, path)
loaded = load_official(path, task='deblur', stage=2, **kw)
x = torch.rand(1, 3, 16, 16)
with torch.no_grad():
    a = net(x, generator=torch.Generator().manual_seed(0))
    b = loaded(x, generator=torch.Generator().manual_seed(0))
print('DIFF', (a - b).abs().max().item())
'''
    out = _run_blocked(code)
    diff = float(re.search(r'DIFF (\S+)', out).group(1))
    assert diff == 0.0


def test_package_has_no_import_machinery():
    """No frame walking, import hooks or private mmengine registry attributes in the package."""
    pattern = re.compile(r'sys\._getframe|_find_and_load|exec_module|meta_path|\._locations|'
                         r'\._imported')
    hits = [f'{path.relative_to(REPO)}:{n}' for path in (REPO / 'diffir_mm').rglob('*.py')
            for n, line in enumerate(path.read_text(encoding='utf-8').splitlines(), 1)
            if pattern.search(line)]
    assert hits == []
