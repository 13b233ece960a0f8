"""Measure what a training config needs per device: ``tools/train.py CONFIG --plan``.

Peak memory is measured, not modelled: for each variant (fp32 / bf16 autocast, block
checkpointing ``with_cp`` off / on) a child process runs a short real training (``iters``
iterations of the config's own model, optimizers, hooks and data pipeline) on synthetic images
in a temporary folder, on the device it runs on, and reports its peak:

* CPU: the child's peak resident set (``VmHWM``, reported by the child itself, see
  :func:`diffir_mm.utils.host_memory.peak_resident_bytes`; ``ru_maxrss`` would report the
  parent's size when the parent is the larger): everything a training process holds (libraries,
  model, optimizer states, activations, the data pipeline); fp32 only (mmengine's
  ``AmpOptimWrapper`` needs a GPU);
* CUDA: ``torch.cuda.max_memory_reserved()`` -- what the caching allocator took from the device.

Each variant runs at two batch sizes; memory grows linearly with the batch (activations), so
the two points give the cost of one more sample and the largest batch that fits ``--memory``.

The dry run keeps the model and optimizer exactly as configured and replaces only what needs
files or time: the training data (synthetic images as large as the pipeline's biggest crop),
the stage-1 / stage-2 checkpoints of the teacher-based editors (random networks of the same
architecture), validation, checkpoint saving and visualisation (off). A progressive patch
schedule is planned at its last phase (the largest patches). Losses whose weights are local
files that do not exist (VGG, ResNet-PL) are left out and the plan says so.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

__all__ = ['Variant', 'Measurement', 'parse_memory', 'format_bytes', 'plan_settings',
           'measure', 'largest_batch', 'run_plan', 'format_plan', 'VARIANTS']

_UNITS = {'': 1, 'K': 2 ** 10, 'M': 2 ** 20, 'G': 2 ** 30, 'T': 2 ** 40}


@dataclass(frozen=True)
class Variant:
    """One measured setting: ``precision`` (``'fp32'`` or ``'bf16'``) and block checkpointing."""

    precision: str
    with_cp: bool

    def label(self) -> str:
        """E.g. ``'bf16, with_cp'``."""
        return f'{self.precision}, {"with_cp" if self.with_cp else "no with_cp"}'


VARIANTS = (Variant('fp32', False), Variant('fp32', True), Variant('bf16', False),
            Variant('bf16', True))


@dataclass(frozen=True)
class Measurement:
    """What one dry run measured.

    Attributes:
        variant: The setting.
        batch: Images per iteration.
        peak_bytes: Peak memory (CPU resident set or CUDA reserved).
        seconds_per_iter: Mean time of the iterations after the first.
        device: ``'cpu'`` or ``'cuda'``.
    """

    variant: Variant
    batch: int
    peak_bytes: int
    seconds_per_iter: float
    device: str


def parse_memory(text: str) -> int:
    """``'24G'``, ``'24GiB'``, ``'512M'`` -> bytes (binary units)."""
    match = re.fullmatch(r'\s*([\d.]+)\s*([KMGT]?)(?:i?B)?\s*', text, flags=re.IGNORECASE)
    if not match:
        raise ValueError(f'cannot read the memory size {text!r} (e.g. 24G, 80GiB, 512M)')
    return int(float(match[1]) * _UNITS[match[2].upper()])


def format_bytes(value: float) -> str:
    """Bytes as GiB with two decimals (MiB below 1 GiB)."""
    if abs(value) < 2 ** 30:
        return f'{value / 2 ** 20:.0f} MiB'
    return f'{value / 2 ** 30:.2f} GiB'


# ------------------------------------------------------------------------ config inspection
def _steps(cfg: Any) -> List[dict]:
    dataset = cfg['train_dataloader']['dataset']
    while 'pipeline' not in dataset and 'dataset' in dataset:
        dataset = dataset['dataset']
    return [s for s in dataset.get('pipeline', []) if isinstance(s, dict)]


def _sizes(step: Any) -> List[int]:
    """Every crop / pad size a pipeline step (or albumentations list) asks for."""
    found = []
    if isinstance(step, dict):
        for key, value in step.items():
            if key in ('gt_patch_size', 'crop_size', 'min_size', 'height', 'width',
                       'min_height', 'min_width'):
                found += [int(v) for v in (value if isinstance(value, (list, tuple))
                                           else [value]) if isinstance(v, (int, float))]
            elif isinstance(value, (list, tuple, dict)):
                found += _sizes(value)
    elif isinstance(step, (list, tuple)):
        for item in step:
            found += _sizes(item)
    return found


def plan_settings(cfg: Any) -> Dict[str, Any]:
    """Batch, patch, scale and synthetic image size of a config's training.

    Returns:
        ``batch`` (per device), ``patch`` (training patch), ``scale`` (GT / LQ), ``image``
        (side of the synthetic GT images) and ``progressive`` (the last phase was chosen).
    """
    loader = cfg['train_dataloader']
    batch = int(loader.get('batch_size', 1))
    steps = _steps(cfg)
    scale = 1
    for step in steps:
        if step.get('type') == 'SetValues':
            scale = int(step.get('dictionary', {}).get('scale', scale))
    patch_steps = [s for s in steps if s.get('type') in ('PairedRandomCrop', 'Crop')]
    sizes = _sizes(patch_steps) or _sizes(steps)
    patch = min(sizes) if sizes else 256
    model = cfg['model']
    preprocessor = model.get('data_preprocessor', {}) or {}
    if 'gt_size' in preprocessor:  # real-world SR: the batched degradation crops
        patch = int(preprocessor['gt_size'])
        scale = int(preprocessor.get('scale', scale))
    progressive = (model.get('train_cfg') or {}).get('progressive')
    if progressive:
        patch = int(max(progressive['gt_sizes']))
        batch = int(progressive['mini_batch_sizes'][-1])
    image = max(_sizes(steps) + [patch, 64])
    image += (-image) % max(scale, 1)
    return dict(batch=batch, patch=patch, scale=scale, image=image,
                progressive=bool(progressive))


# ---------------------------------------------------------------------------- the dry run
def _write_images(root: str, prefixes: Dict[str, str], count: int, size: int,
                  scale: int) -> None:
    import cv2
    import numpy as np

    rng = np.random.default_rng(0)
    for key, prefix in prefixes.items():
        side = size // scale if key == 'img' else size
        folder = os.path.join(root, prefix)
        os.makedirs(folder, exist_ok=True)
        for i in range(count):
            img = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
            if key == 'mask':
                img = (img[..., 0] > 127).astype(np.uint8) * 255
            cv2.imwrite(os.path.join(folder, f'{i:04d}.png'), img)


def _random_checkpoints(model_cfg: dict, folder: str) -> Dict[str, str]:
    """Random stage-1 / stage-2 networks for the editors that load them when training starts."""
    import torch

    from diffir_mm.models.editors.teacher import teacher_config
    from mmagic.registry import MODELS

    paths = {}
    generator = dict(model_cfg['generator'])
    if model_cfg.get('stage1_checkpoint') or model_cfg.get('stage2_checkpoint'):
        paths['stage1_checkpoint'] = os.path.join(folder, 'stage1.pth')
        torch.save(MODELS.build(teacher_config(generator)).state_dict(),
                   paths['stage1_checkpoint'])
    if model_cfg.get('stage2_checkpoint'):
        paths['stage2_checkpoint'] = os.path.join(folder, 'stage2.pth')
        torch.save(MODELS.build(generator).state_dict(), paths['stage2_checkpoint'])
    return paths


def _drop_missing_weights(model_cfg: dict, notes: List[str]) -> None:
    for key, path_key in (('perceptual_loss', 'vgg_path'), ('resnet_pl_loss', 'weights_path')):
        loss = model_cfg.get(key)
        if isinstance(loss, dict) and loss.get(path_key) and \
                not os.path.exists(loss[path_key]):
            model_cfg[key] = None
            notes.append(f'{key} left out: its weights {loss[path_key]} are not here')


def _dry_run_config(cfg: Any, variant: Variant, batch: int, iters: int, work: str,
                    notes: List[str]) -> Any:
    """The config of one dry run (see the module docstring)."""
    settings = plan_settings(cfg)
    data_root = os.path.join(work, 'data')
    loader = cfg['train_dataloader']
    dataset = loader['dataset']
    while 'data_prefix' not in dataset and 'dataset' in dataset:
        dataset = dataset['dataset']
    prefixes = dict(dataset.get('data_prefix') or {'gt': ''})
    _write_images(data_root, prefixes, max(batch, 2), settings['image'], settings['scale'])
    dataset.update(data_root=data_root, ann_file='', recursive=False)
    loader.update(batch_size=batch, num_workers=0, persistent_workers=False)
    model = cfg['model']
    model['generator']['with_cp'] = variant.with_cp
    progressive = (model.get('train_cfg') or {}).get('progressive')
    if progressive:
        model['train_cfg']['progressive'] = dict(iters=[iters], mini_batch_sizes=[batch],
                                                 gt_sizes=[settings['patch']])
        loader['batch_size'] = batch
    model.update(_random_checkpoints(model, work))
    for key in ('discriminator_checkpoint', ):
        if model.get(key):
            model[key] = None
    _drop_missing_weights(model, notes)
    cfg['train_cfg'] = dict(type='IterBasedTrainLoop', max_iters=iters, val_interval=iters + 1)
    for key in ('val_dataloader', 'val_evaluator', 'val_cfg', 'test_dataloader',
                'test_evaluator', 'test_cfg'):
        cfg[key] = None
    cfg['default_hooks']['checkpoint'] = None
    cfg['default_hooks']['logger'] = dict(type='LoggerHook', interval=1)
    cfg['custom_hooks'] = [h for h in cfg.get('custom_hooks') or []
                           if 'Visualization' not in h.get('type', '')]
    cfg['visualizer'] = dict(type='ConcatImageVisualizer',
                             vis_backends=[dict(type='LocalVisBackend')], fn_key='gt_path',
                             img_keys=['pred_img'])
    cfg['work_dir'] = os.path.join(work, 'work_dir')
    cfg['load_from'], cfg['resume'] = None, False
    cfg['log_level'] = 'WARNING'
    if variant.precision == 'bf16':
        _autocast_bf16(cfg['optim_wrapper'])
    return cfg


def _autocast_bf16(optim_wrapper: dict) -> None:
    """Every optimizer wrapper of the config -> ``AmpOptimWrapper(dtype='bfloat16')``."""
    wrappers = [optim_wrapper] if 'optimizer' in optim_wrapper else [
        v for v in optim_wrapper.values() if isinstance(v, dict) and 'optimizer' in v]
    for wrapper in wrappers:
        wrapper['type'] = 'AmpOptimWrapper'
        wrapper['dtype'] = 'bfloat16'


def child_main(spec_path: str) -> int:
    """The child process: one dry run of the spec, its result as a JSON line on stdout."""
    import torch
    from mmengine.config import Config
    from mmengine.runner import Runner

    from diffir_mm.registration import register_all_modules
    from diffir_mm.utils.host_memory import (keep_freed_memory_unless_disabled,
                                             peak_resident_bytes)

    keep_freed_memory_unless_disabled()  # as tools/train.py
    with open(spec_path) as fh:
        spec = json.load(fh)
    register_all_modules(init_default_scope=False)
    cfg = Config.fromfile(spec['config'])
    if spec['cfg_options']:
        cfg.merge_from_dict(spec['cfg_options'])
    notes: List[str] = []
    cfg = _dry_run_config(cfg, Variant(**spec['variant']), spec['batch'], spec['iters'],
                          spec['work'], notes)
    runner = Runner.from_cfg(cfg)
    runner.train()
    times = runner.message_hub.get_scalar('train/time').data[0][1:]
    cuda = torch.cuda.is_available()
    result = dict(device='cuda' if cuda else 'cpu', notes=notes,
                  seconds_per_iter=float(sum(times) / len(times)) if len(times) else 0.0,
                  cuda_peak=int(torch.cuda.max_memory_reserved()) if cuda else 0,
                  cpu_peak=peak_resident_bytes())
    print('PLAN-RESULT ' + json.dumps(result), flush=True)
    return 0


def measure(config: str, cfg_options: Optional[dict], variant: Variant, batch: int,
            iters: int = 3, env: Optional[Dict[str, str]] = None) -> Tuple[Measurement, List[str]]:
    """One dry run in a child process.

    Returns:
        The measurement and the notes of the dry run (left-out losses).

    Raises:
        RuntimeError: The dry run failed (with the end of its output).
    """
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    with tempfile.TemporaryDirectory(prefix='diffir_plan_') as work:
        spec = dict(config=os.path.abspath(config), cfg_options=cfg_options or {},
                    variant=dict(precision=variant.precision, with_cp=variant.with_cp),
                    batch=batch, iters=iters, work=work)
        spec_path = os.path.join(work, 'spec.json')
        with open(spec_path, 'w') as fh:
            json.dump(spec, fh)
        child_env = dict(os.environ if env is None else env)
        child_env['PYTHONPATH'] = os.pathsep.join(
            [repo] + ([child_env['PYTHONPATH']] if child_env.get('PYTHONPATH') else []))
        proc = subprocess.Popen([sys.executable, '-m', 'diffir_mm.utils.memory_plan',
                                 spec_path], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                cwd=os.getcwd(), env=child_env, text=True)
        output = proc.stdout.read()
        proc.wait()
    lines = [ln for ln in output.splitlines() if ln.startswith('PLAN-RESULT ')]
    if proc.returncode != 0 or not lines:
        tail = '\n'.join(output.splitlines()[-15:])
        raise RuntimeError(f'the dry run ({variant.label()}, batch {batch}) failed:\n{tail}')
    result = json.loads(lines[-1][len('PLAN-RESULT '):])
    peak = result['cuda_peak'] if result['device'] == 'cuda' else result['cpu_peak']
    return Measurement(variant, batch, int(peak), result['seconds_per_iter'],
                       result['device']), result['notes']


def largest_batch(low: Measurement, high: Measurement, budget: int) -> Optional[int]:
    """The largest batch whose linearly extrapolated peak fits ``budget``.

    Returns:
        The batch; 0 when not even one image fits; None when the two runs measured no growth
        (the model is too small for the batch to show in the peak).
    """
    per_sample = (high.peak_bytes - low.peak_bytes) / max(high.batch - low.batch, 1)
    if per_sample <= 0:
        return None
    base = low.peak_bytes - per_sample * low.batch
    return max(0, int((budget - base) // per_sample))


def run_plan(config: str, cfg_options: Optional[dict], cfg: Any, budget: Optional[int],
             variants: Sequence[Variant] = VARIANTS, iters: int = 3,
             log=print) -> Dict[str, Any]:
    """Measure every variant at the configured batch and a smaller one (two if it is 1).

    bf16 runs under mmengine's ``AmpOptimWrapper``, which needs an accelerator: on a machine
    without CUDA only the fp32 variants are measured (and the plan says so).
    """
    import torch

    settings = plan_settings(cfg)
    batch = settings['batch']
    batches = (batch, batch + 1) if batch == 1 else (max(1, batch // 2), batch)
    rows, notes = [], []
    if not torch.cuda.is_available() and any(v.precision != 'fp32' for v in variants):
        variants = [v for v in variants if v.precision == 'fp32']
        notes.append('bf16 not measured: mmengine\'s AmpOptimWrapper (--amp) needs a GPU')
    for variant in variants:
        pair = []
        for b in batches:
            log(f'measuring {variant.label()}, batch {b} ...')
            found, extra = measure(config, cfg_options, variant, b, iters)
            pair.append(found)
            notes += [n for n in extra if n not in notes]
        at_batch = next(m for m in pair if m.batch == batch)
        low, high = pair
        rows.append(dict(variant=variant, measured=at_batch, low=low, high=high,
                         per_sample=(high.peak_bytes - low.peak_bytes) / (high.batch - low.batch),
                         largest=largest_batch(low, high, budget) if budget else None))
    return dict(settings=settings, rows=rows, notes=notes, budget=budget)


def format_plan(plan: Dict[str, Any], config: str) -> List[str]:
    """The table ``--plan`` prints."""
    settings = plan['settings']
    device = plan['rows'][0]['measured'].device if plan['rows'] else 'cpu'
    what = 'peak resident memory of the training process' if device == 'cpu' else \
        'peak CUDA memory reserved per GPU'
    lines = [f'plan for {config} on {device} ({what}):',
             f'  batch {settings["batch"]} per device, patch {settings["patch"]}'
             + (' (last phase of the progressive schedule)' if settings['progressive'] else '')]
    budget = plan['budget']
    header = f'  {"precision":9} {"with_cp":7} {"peak":>10} {"per sample":>11} {"s/iter":>7}'
    if budget:
        header += f'  largest batch in {format_bytes(budget)}'
    lines.append(header)
    for row in plan['rows']:
        m = row['measured']
        line = (f'  {m.variant.precision:9} {"on" if m.variant.with_cp else "off":7} '
                f'{format_bytes(m.peak_bytes):>10} {format_bytes(row["per_sample"]):>11} '
                f'{m.seconds_per_iter:7.2f}')
        if budget:
            largest = row['largest']
            line += ('  n/a (no growth with the batch measured)' if largest is None else
                     f'  {largest}' if largest else '  none (one image does not fit)')
        lines.append(line)
    lines += [f'  note: {n}' for n in plan['notes']]
    return lines


if __name__ == '__main__':
    sys.exit(child_main(sys.argv[1]))
