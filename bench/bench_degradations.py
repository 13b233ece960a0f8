"""Throughput of the two Real-ESRGAN training-pair pipelines of the real-SR recipes.

* **CPU pipeline** (``train_pipeline_cpu`` of ``configs/_base_/datasets/realsr_df2k_ost.py``):
  load a 400x400 GT PNG, crop/flip, degrade it per image on the CPU, crop the 256 patch.
* **Batched pipeline** (the default, ``train_pipeline`` + ``RealESRGANDegradationPreprocessor``):
  the loader part (load, crop/flip, draw the three kernels) runs per image on the data workers;
  the degradation, patch crop, queue and USM run per batch on the model's device -- measured
  here on the CPU as well (an upper bound of its cost; on a GPU it is a few kernel launches).

One process, ``--threads`` torch/OpenCV threads (default 1: "per core"), the ``configs/
diffir_sr_s2.py`` settings (400x400 GT, batch 9, x4). Rounds of the pipelines are interleaved
(A, B, A, B, ...) so that the load of the shared machine affects both alike; each round records
how many cores other processes used (``/proc/stat`` minus this process), and the table gives the
median samples/s over the rounds plus the foreign load.

Usage::

    python bench/bench_degradations.py                    # 5 rounds x 18 samples each
    python bench/bench_degradations.py --rounds 3 --json out.json
"""
from __future__ import annotations

import argparse
import json
import os
import os.path as osp
import statistics
import sys
import tempfile
import time
from typing import Callable, Dict, List

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, osp.join(REPO, 'tests'))


def _busy_seconds() -> float:
    """CPU-seconds all cores spent non-idle since boot (``/proc/stat``)."""
    with open('/proc/stat') as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / os.sysconf('SC_CLK_TCK')


def timed(fn: Callable[[], int]) -> Dict[str, float]:
    """Run ``fn`` (returns #samples); samples/s and the cores used by other processes."""
    busy, own, wall = _busy_seconds(), time.process_time(), time.perf_counter()
    n = fn()
    wall = time.perf_counter() - wall
    own = time.process_time() - own
    foreign = max(0., (_busy_seconds() - busy - own) / wall)
    return dict(samples_per_s=n / wall, ms_per_sample=1000 * wall / n, foreign_cores=foreign)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--rounds', type=int, default=5)
    parser.add_argument('--batches', type=int, default=2, help='batches of 9 per round')
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--json', default=None)
    args = parser.parse_args()

    import cv2
    import numpy as np
    import torch
    from mmengine import Config
    from mmengine.dataset import pseudo_collate
    from mmengine.registry import init_default_scope

    import diffir_mm  # noqa: F401
    from helpers import SAMPLE_IMAGES, sample_image
    from mmagic.registry import DATASETS, MODELS

    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    init_default_scope('mmagic')
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'diffir_sr_s2.py'))
    batch = cfg.train_dataloader.batch_size
    tmp = tempfile.mkdtemp(prefix='bench_degr_')
    os.makedirs(osp.join(tmp, 'GT_sub'))
    for name in SAMPLE_IMAGES:
        cv2.imwrite(osp.join(tmp, 'GT_sub', f'{name}.png'), sample_image(name, 400)[..., ::-1])

    def dataset(pipeline):
        return DATASETS.build(dict(cfg.train_dataloader.dataset, data_root=tmp, ann_file='',
                                   pipeline=pipeline))

    cpu_ds, batched_ds = dataset(cfg.train_pipeline_cpu), dataset(cfg.train_pipeline)
    pre = MODELS.build(dict(cfg.model.data_preprocessor, seed=0))
    n = args.batches * batch
    np.random.seed(0)

    def cpu_pipeline() -> int:
        for i in range(n):
            cpu_ds[i % len(cpu_ds)]
        return n

    loader_items: List = []

    def batched_loader() -> int:
        loader_items.clear()
        for i in range(n):
            loader_items.append(batched_ds[i % len(batched_ds)])
        return n

    def batched_device_stage() -> int:
        for b in range(args.batches):
            pre(pseudo_collate(loader_items[b * batch:(b + 1) * batch]), True)
        return n

    cases = dict(cpu=cpu_pipeline, batched_loader=batched_loader,
                 batched_device_stage_on_cpu=batched_device_stage)
    for fn in cases.values():  # warm-up (imports, caches, first-call allocations)
        fn()
    results: Dict[str, List[Dict[str, float]]] = {k: [] for k in cases}
    for _ in range(args.rounds):
        for key, fn in cases.items():
            results[key].append(timed(fn))

    def summary(rows: List[Dict[str, float]]) -> Dict[str, float]:
        return dict(samples_per_s=statistics.median(r['samples_per_s'] for r in rows),
                    ms_per_sample=statistics.median(r['ms_per_sample'] for r in rows),
                    foreign_cores_mean=statistics.mean(r['foreign_cores'] for r in rows),
                    foreign_cores_max=max(r['foreign_cores'] for r in rows))

    table = {k: summary(v) for k, v in results.items()}
    loader, stage = table['batched_loader'], table['batched_device_stage_on_cpu']
    both_ms = loader['ms_per_sample'] + stage['ms_per_sample']
    table['batched_all_on_cpu'] = dict(samples_per_s=1000 / both_ms, ms_per_sample=both_ms)
    ratio = table['cpu']['ms_per_sample'] / loader['ms_per_sample']
    print(f'{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}, {args.threads} '
          f'thread(s), {args.rounds} interleaved rounds x {n} samples (400x400 GT, batch '
          f'{batch}, x{pre.scale})')
    print(f'{"pipeline":<34}{"samples/s":>10}{"ms/sample":>11}{"foreign cores":>15}')
    for key, row in table.items():
        foreign = (f'{row["foreign_cores_mean"]:.2f} (max {row["foreign_cores_max"]:.2f})'
                   if 'foreign_cores_mean' in row else '')
        print(f'{key:<34}{row["samples_per_s"]:>10.1f}{row["ms_per_sample"]:>11.1f}  {foreign}')
    print(f'per-core data-worker work: CPU pipeline / batched loader = {ratio:.1f}x')
    if args.json:
        from diffir_mm.utils.atomic import write_bytes_atomic
        report = dict(table=table, rounds=results, threads=args.threads)
        write_bytes_atomic(args.json, json.dumps(report, indent=2).encode())
    return 0


if __name__ == '__main__':
    sys.exit(main())
