"""``diffir_mm.archs`` is plain PyTorch: importing it must not import mmagic, mmcv or mmengine."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MM_PACKAGES = ('mmagic', 'mmcv', 'mmengine')


def _modules_after(code: str) -> set:
    """Run ``code`` in a fresh interpreter and return the MM packages left in ``sys.modules``."""
    probe = (f'{code}\nimport sys\n'
             f'print("MM:" + ",".join(m for m in {MM_PACKAGES!r} if m in sys.modules))')
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        filter(None, [str(REPO), os.environ.get('PYTHONPATH')])))
    result = subprocess.run([sys.executable, '-c', probe], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    line = result.stdout.strip().splitlines()[-1]
    assert line.startswith('MM:'), result.stdout
    return set(filter(None, line[len('MM:'):].split(',')))


@pytest.mark.parametrize('code', [
    'import diffir_mm.archs',
    'import diffir_mm.archs\nfrom diffir_mm import load_official',
    'from diffir_mm.archs import build_diffir, load_official\n'
    "build_diffir('sr_x4', 2, dim=8, num_blocks=[1, 1, 1, 1], num_refinement_blocks=1)",
])
def test_archs_import_is_torch_only(code: str):
    assert _modules_after(code) == set()
