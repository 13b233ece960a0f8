"""CPU time of one DiffIR inpainting training iteration (stage 1 and 2) and each loss's share.

Builds the real recipes (``configs/diffir_inpaint_celeba_s{1,2}.py``: the full-size generator,
LaMa's losses, the NLayer discriminator, both Adam optimizers with gradient clipping) with random
weights (ResNet-PL: a random encoder; stage 2: a random stage-1 checkpoint written to a temporary
folder), feeds batches made by the config's own training pipeline from scikit-image photos at the
official patch size and batch (256x256, 4 per GPU), fp32, and measures:

* **step**: the editor's whole ``train_step`` (generator step, then the discriminator step on a
  regenerated fake, optimizer updates): the median of ``--runs`` after ``--warmup``;
* **components**, timed one by one on the same batch (medians of ``--runs``):
  ``generator forward`` (stage 2: with the frozen teacher's CPEN_S1 and the 4 diffusion steps),
  each loss's own forward + backward down to the generator output (``masked L1``,
  ``adversarial`` = D(real) + D(fake) + its backward, ``+ feature matching`` = what feature
  matching adds to that, ``ResNet-PL``; stage 2 ``L_diff`` with its backward through the
  denoiser and CPEN_S2), the ``generator backward`` from the output, the discriminator step's
  ``regenerate`` forward and ``discriminator loss`` (real / fake / R1 with its double backward).
  Their share of the step is reported; the remainder is the optimizer updates, clipping and
  overheads.

Usage::

    python bench/bench_inpaint_step.py                       # both stages, 1 warm-up + 3 runs
    python bench/bench_inpaint_step.py --stages 1 --runs 1 --json out.json
    python bench/bench_inpaint_step.py --size 64 --runs 1    # a quick smoke run

Needs about 10 GB of free memory at 256x256 (check ``free -g``); close other CPU-heavy work: the
numbers are wall-clock times of a 2-core machine.
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault('NO_ALBUMENTATIONS_UPDATE', '1')

PHOTOS = ('astronaut', 'coffee', 'chelsea', 'rocket')


def median_time(fn: Callable[[], None], runs: int, warmup: int) -> float:
    """Median wall-clock seconds of ``fn`` over ``runs`` calls after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def load_config(stage: int, size: int, stage1_checkpoint: str):
    """The CelebA-HQ recipe of ``stage`` with random ResNet-PL weights and ``size`` crops."""
    from mmengine import Config
    cfg = Config.fromfile(str(ROOT / 'configs' / f'diffir_inpaint_celeba_s{stage}.py'))
    cfg.model.resnet_pl_loss.update(weights_path=None, allow_random_weights=True)
    if stage == 2:
        cfg.model.stage1_checkpoint = stage1_checkpoint
    cfg.size = size
    return cfg


def make_batch(cfg, batch: int) -> dict:
    """A training batch from the config's own pipeline (photos resized to the crop size)."""
    import cv2
    import skimage.data
    from mmengine.dataset import Compose, pseudo_collate
    from mmagic.registry import TRANSFORMS
    pipeline = Compose([TRANSFORMS.build(step) for step in cfg.train_pipeline])
    samples = []
    with tempfile.TemporaryDirectory() as folder:
        for i in range(batch):
            img = getattr(skimage.data, PHOTOS[i % len(PHOTOS)])()[..., :3]
            img = cv2.resize(img, (cfg.size, cfg.size), interpolation=cv2.INTER_AREA)
            path = os.path.join(folder, f'{i}.png')
            cv2.imwrite(path, img[..., ::-1])
            samples.append(pipeline(dict(gt_path=path, img_path=path)))
    return pseudo_collate(samples)


def write_stage1_checkpoint(path: str, cfg1) -> None:
    """A random stage-1 model saved in our (mmengine) checkpoint layout."""
    from mmagic.registry import MODELS
    torch.manual_seed(0)
    generator = MODELS.build(cfg1.model.generator)
    torch.save({'state_dict': {f'generator.{k}': v for k, v in generator.state_dict().items()}},
               path)


def components(model, data: dict, runs: int, warmup: int) -> Dict[str, float]:
    """Median seconds of each part of one iteration (see the module docstring)."""
    from mmagic.models.utils import set_requires_grad
    processed = model.data_preprocessor(data, True)
    inputs, samples = processed['inputs'], processed['data_samples']
    net_input, mask = model.network_input(inputs, samples)
    gt = samples.gt_img
    disc = model.discriminator
    out: Dict[str, float] = {}
    set_requires_grad(disc, False)

    def gen_forward():
        return model.generate(net_input, gt, 0)

    out['generator forward'] = median_time(gen_forward, runs, warmup)
    fake, extra, _ = gen_forward()
    leaf = fake.detach().requires_grad_()

    def head(loss_fn):
        def run():
            torch.autograd.grad(loss_fn(), leaf)
        return median_time(run, runs, warmup)

    def adversarial(with_fm: bool):
        with torch.no_grad():
            _, real_feats = disc.forward_features(gt)
        logits, fake_feats = disc.forward_features(leaf)
        loss = model.adversarial_loss.generator_loss(logits)
        if with_fm:
            loss = loss + model.feature_matching_loss(fake_feats, real_feats)
        return loss

    out['masked L1'] = head(lambda: model.masked_l1_loss(leaf, gt, mask))
    adv = head(lambda: adversarial(False))
    out['adversarial (D(real) + D(fake))'] = adv
    out['+ feature matching'] = max(head(lambda: adversarial(True)) - adv, 0.0)
    out['ResNet-PL'] = head(lambda: model.resnet_pl_loss(leaf, gt))
    if 'loss_diff' in extra:
        def diff_backward():
            _, losses, _ = model.generate(net_input, gt, 0)
            losses['loss_diff'].backward()
        # the L_diff backward alone: (generate + its backward) - generate
        out['L_diff (backward through denoiser + CPEN_S2)'] = max(
            median_time(diff_backward, runs, warmup) - out['generator forward'], 0.0)
    grad = torch.randn_like(fake)

    def gen_backward():
        image, _, _ = model.generate(net_input, gt, 0)
        image.backward(grad)

    out['generator backward'] = max(
        median_time(gen_backward, runs, warmup) - out['generator forward'], 0.0)
    model.zero_grad(set_to_none=True)

    def regenerate():
        with torch.no_grad():
            return model.generate(net_input, gt, 0, stream=1)[0]

    out['regenerate (discriminator step)'] = median_time(regenerate, runs, warmup)
    fake = regenerate()
    set_requires_grad(disc, True)

    def disc_step():
        losses = model._discriminator_objective(gt, fake.detach(), mask)
        sum(losses.values()).backward()

    out['discriminator loss (real, fake, R1)'] = median_time(disc_step, runs, warmup)
    model.zero_grad(set_to_none=True)
    return out


def bench_stage(stage: int, args, folder: str) -> dict:
    """Step time and components of one stage."""
    from mmengine.optim import build_optim_wrapper
    from mmagic.registry import MODELS
    ckpt = os.path.join(folder, 's1.pth')
    if stage == 2 and not os.path.isfile(ckpt):
        write_stage1_checkpoint(ckpt, load_config(1, args.size, ''))
    cfg = load_config(stage, args.size, ckpt)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    model.train()
    optim = build_optim_wrapper(model, cfg.optim_wrapper)
    data = make_batch(cfg, args.batch)
    step = median_time(lambda: model.train_step(data, optim), args.runs, args.warmup)
    parts = components(model, data, args.runs, args.warmup)
    return dict(stage=stage, size=args.size, batch=args.batch, step_s=step, parts_s=parts,
                losses=sorted(model.train_step(data, optim)))


def report(result: dict) -> List[str]:
    """Markdown rows of one stage."""
    step = result['step_s']
    lines = [f"### stage {result['stage']}: {result['batch']} x {result['size']}^2, "
             f"train_step {step:.2f} s (logged: {', '.join(result['losses'])})", '',
             '| part | seconds | share of the step |', '|---|---|---|']
    for name, seconds in result['parts_s'].items():
        lines.append(f'| {name} | {seconds:.3f} | {100 * seconds / step:.1f} % |')
    rest = step - sum(result['parts_s'].values())
    lines.append(f'| rest (optimizer updates, clipping, overheads) | {rest:.3f} | '
                 f'{100 * rest / step:.1f} % |')
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--stages', type=int, nargs='+', default=[1, 2], choices=[1, 2])
    parser.add_argument('--size', type=int, default=256, help='patch side (official 256)')
    parser.add_argument('--batch', type=int, default=4, help='batch (official 4 per GPU)')
    parser.add_argument('--runs', type=int, default=3)
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--json', help='write the results here')
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    import logging
    logging.getLogger('mmengine').setLevel(logging.WARNING)  # init_weights lists every tensor
    import diffir_mm.registration  # noqa: F401
    from mmengine.registry import init_default_scope
    init_default_scope('mmagic')
    results = []
    with tempfile.TemporaryDirectory() as folder:
        for stage in args.stages:
            result = bench_stage(stage, args, folder)
            results.append(result)
            print('\n'.join(report(result)), flush=True)
            print()
    if args.json:
        from diffir_mm.utils.atomic import write_bytes_atomic
        summary = dict(threads=args.threads, runs=args.runs, results=results)
        write_bytes_atomic(args.json, json.dumps(summary, indent=1).encode())
    return 0


if __name__ == '__main__':
    sys.exit(main())
