"""bench/bench_untiled_memory.py: the ``--smoke`` run measures every task and keeps the margin,
so the check behind the web app's untiled-memory estimate cannot rot."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_smoke_rows_are_measured_and_within_the_margin(tmp_path):
    out = tmp_path / 'rows.json'
    proc = subprocess.run([sys.executable, str(ROOT / 'bench' / 'bench_untiled_memory.py'),
                           '--smoke', '--json', str(out)], cwd=ROOT, capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = json.loads(out.read_text())
    assert [r['preset'] for r in rows] == ['deblur', 'deblur', 'sr_x4', 'inpaint']
    for row in rows:
        assert row['traced_mb'] > 0 and row['measured_mb'] > 0, row
        assert row['ratio'] <= row['margin'] and row['holds'], row
    sr = next(r for r in rows if r['preset'] == 'sr_x4')
    assert sr['output'] == [4 * sr['side'], 4 * sr['side']]
    # more pixels, more memory: the estimate scales with the image
    assert rows[1]['traced_mb'] > 2 * rows[0]['traced_mb']
