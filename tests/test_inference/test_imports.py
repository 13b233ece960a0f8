"""The inference package and the CLI stay torch-only (no mmagic / mmcv / mmengine)."""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_inference_and_cli_do_not_import_the_mm_stack():
    code = ('import sys; import diffir_mm.inference, diffir_mm.cli.restore; '
            "print(sorted({m.split('.')[0] for m in sys.modules} & "
            "{'mmagic', 'mmcv', 'mmengine'}))")
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, cwd=ROOT,
                          env=dict(os.environ, PYTHONPATH=ROOT), timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == '[]'
