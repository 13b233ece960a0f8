"""scripts/setup_env.sh is idempotent: a second run reuses the environment, no mmcv rebuild."""
import os
import subprocess
import time

from helpers import REPO_ROOT


def test_second_setup_is_fast_and_does_not_rebuild_mmcv():
    start = time.monotonic()
    proc = subprocess.run(['bash', os.path.join(REPO_ROOT, 'scripts', 'setup_env.sh')],
                          cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=600)
    elapsed = time.monotonic() - start
    assert proc.returncode == 0, proc.stdout[-2000:]
    assert 'mmcv 2.1.0 with ops already installed' in proc.stdout, proc.stdout
    assert 'building mmcv' not in proc.stdout
    assert 'environment ready' in proc.stdout
    assert elapsed < 60, f'second set-up took {elapsed:.0f} s'


def test_mmcv_ops_and_pins():
    import mmagic
    import mmcv
    import mmcv._ext  # noqa: F401  (compiled ops)
    import numpy
    assert mmcv.__version__ == '2.1.0'
    assert mmagic.__version__ == '1.2.0'
    assert numpy.__version__.startswith('1.')


def test_import_turns_off_albumentations_network_check():
    import sys
    env = {k: v for k, v in os.environ.items() if k != 'NO_ALBUMENTATIONS_UPDATE'}
    code = 'import os, diffir_mm.registration; print(os.environ.get("NO_ALBUMENTATIONS_UPDATE"))'
    proc = subprocess.run([sys.executable, '-c', code], cwd=REPO_ROOT, env=env, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=300)
    assert proc.stdout.strip().splitlines()[-1] == '1'
