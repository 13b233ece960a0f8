"""ONNX Runtime against PyTorch on this CPU, and the export time, for the full released presets.

For each case (random weights of the released architecture; latency does not depend on them):

* export time of ``export_onnx`` (torchscript exporter: one trace, cut into the three graphs,
  each checked with ``onnx.checker``);
* latency of one stage-2 restoration for the same ``image`` and ``x_T``: PyTorch ``net(lq,
  noise=x_T)`` under ``torch.inference_mode()`` (the folded fast path), the ONNX Runtime full
  graph (``image, x_T -> restored``), and the ONNX Runtime backend of ``diffir-restore`` (prior
  graph, then DIRformer graph); 2 threads each (``torch.set_num_threads(2)``, ORT
  ``intra_op_num_threads=2``), one warm-up run each, then ``--repeats`` rounds in which the
  three run one after another (interleaved, so a load change hits all of them), median reported;
* the largest absolute difference between ORT and PyTorch outputs.

Usage::

    python bench/bench_onnx.py                      # deblur 256x256 and SR x4 LR 64x64
    python bench/bench_onnx.py --repeats 3 --cases sr_x4_64 --json out.json

Close other CPU-heavy processes first (``uptime``): with 2 threads a busy core slows both sides.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from diffir_mm.archs import IPR_DIM, build_diffir  # noqa: E402
from diffir_mm.deploy.onnx_export import export_onnx  # noqa: E402
from diffir_mm.deploy.onnx_runtime import OnnxRuntimeNetwork  # noqa: E402

#: name -> (preset, input shape)
CASES = {
    'deblur_256': ('deblur', (1, 3, 256, 256)),
    'sr_x4_64': ('sr_x4', (1, 3, 64, 64)),
}
THREADS = 2


def _timed(fn: Callable[[], torch.Tensor]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def run_case(name: str, repeats: int, folder: str) -> Dict[str, float]:
    """Export and time one case; returns the row of the table."""
    import onnxruntime as ort

    preset, shape = CASES[name]
    torch.manual_seed(0)
    net = build_diffir(preset, stage=2).eval()
    reference = build_diffir(preset, stage=2).eval()
    reference.load_state_dict(net.state_dict())
    path = os.path.join(folder, f'{name}.onnx')
    meta = export_onnx(net, path)
    gen = torch.Generator().manual_seed(0)
    image = torch.rand(*shape, generator=gen)
    x_t = torch.randn(shape[0], IPR_DIM, generator=gen)

    options = ort.SessionOptions()
    options.intra_op_num_threads = THREADS
    options.inter_op_num_threads = 1
    full = ort.InferenceSession(path, sess_options=options, providers=['CPUExecutionProvider'])
    backend = OnnxRuntimeNetwork(path, threads=THREADS)
    feeds = {'image': image.numpy(), 'x_T': x_t.numpy()}

    def pytorch():
        with torch.inference_mode():
            return reference(image, noise=x_t)

    def ort_full():
        return torch.from_numpy(full.run(['restored'], feeds)[0])

    def ort_backend():
        return backend(image, noise=x_t)

    runs = {'pytorch': pytorch, 'ort_full': ort_full, 'ort_backend': ort_backend}
    outputs = {key: fn() for key, fn in runs.items()}  # warm-up
    times: Dict[str, List[float]] = {key: [] for key in runs}
    for _ in range(repeats):
        for key, fn in runs.items():
            times[key].append(_timed(fn))
    diff = max(float((outputs[k] - outputs['pytorch']).abs().max())
               for k in ('ort_full', 'ort_backend'))
    row = dict(case=name, export_s=meta['export_seconds'], max_diff=diff,
               **{f'{k}_s': statistics.median(v) for k, v in times.items()},
               **{f'{k}_runs': v for k, v in times.items()})
    row['ort_vs_pytorch'] = row['ort_full_s'] / row['pytorch_s']
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--cases', nargs='+', choices=sorted(CASES), default=list(CASES))
    parser.add_argument('--repeats', type=int, default=5, help='timed interleaved rounds')
    parser.add_argument('--json', help='also write the rows here')
    args = parser.parse_args()
    torch.set_num_threads(THREADS)
    rows = []
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as folder:
        for name in args.cases:
            rows.append(run_case(name, args.repeats, folder))
            print(f'{name}: done', file=sys.stderr, flush=True)
    print(f'load average {load_before:.1f} -> {os.getloadavg()[0]:.1f}; torch {torch.__version__}, '
          f'{THREADS} threads, median of {args.repeats} interleaved rounds')
    print('| case | export (s) | PyTorch (s) | ORT full graph (s) | ORT backend: prior + DIRformer '
          '(s) | ORT / PyTorch | max diff |')
    print('|---|---|---|---|---|---|---|')
    for r in rows:
        print(f'| {r["case"]} | {r["export_s"]:.1f} | {r["pytorch_s"]:.2f} | {r["ort_full_s"]:.2f} '
              f'| {r["ort_backend_s"]:.2f} | {r["ort_vs_pytorch"]:.2f} | {r["max_diff"]:.1e} |')
    if args.json:
        from diffir_mm.utils.atomic import write_bytes_atomic
        write_bytes_atomic(args.json, json.dumps(rows, indent=2).encode())
    return 0


if __name__ == '__main__':
    sys.exit(main())
