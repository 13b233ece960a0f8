"""Official issue #21 on the demo's stage 1: a learning rate set for a large batch, used at batch
1, makes stage 1 diverge to a ~5 dB result; ``--auto-scale-lr`` (the rate x batch / the batch it
was set for) keeps it stable. The measured study behind docs/user_guides/own_data.md:
``bench/bench_small_batch.py``."""
import glob
import json
import os.path as osp

import pytest

from helpers import REPO_ROOT, TOOLS_DIR, run_python

CONFIG = osp.join(REPO_ROOT, 'configs', 'demo', 'diffir_demo_deblur_s1.py')
ITERS = 100


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    from diffir_mm.demo.tasks import TASKS, make_data

    root = tmp_path_factory.mktemp('small_batch')
    make_data(str(root), TASKS['deblur'])
    return root


def _run(data, work, *extra):
    """Stage 1 at batch 1 with the rate of a 16-image batch (4x the demo's 1e-3 for 4)."""
    opts = [f'train_dataloader.dataset.data_root={data}/train',
            f'test_dataloader.dataset.data_root={data}/test', 'train_dataloader.batch_size=1',
            'optim_wrapper.optimizer.lr=4e-3', 'auto_scale_lr.base_batch_size=16',
            f'train_cfg.max_iters={ITERS}', f'default_hooks.checkpoint.interval={ITERS}',
            'default_hooks.logger.interval=5', 'custom_hooks=[]', 'model.is_use_ema=False']
    run_python([osp.join(TOOLS_DIR, 'train.py'), CONFIG, '--work-dir', str(work), *extra,
                '--cfg-options', *opts], timeout=1200)
    scalars = glob.glob(str(work / '*' / 'vis_data' / 'scalars.json'))[-1]
    records = [json.loads(line) for line in open(scalars).read().splitlines()]
    out = work / 'metrics.json'
    run_python([osp.join(TOOLS_DIR, 'test.py'), CONFIG, str(work / f'iter_{ITERS}.pth'),
                '--work-dir', str(work), '--out', str(out), '--cfg-options', opts[1],
                'custom_hooks=[]', 'model.is_use_ema=False'], timeout=600)
    return [r['loss'] for r in records if 'loss' in r], [r['lr'] for r in records if 'lr' in r], \
        json.load(open(out))['demo/PSNR']


@pytest.mark.timeout(2400)
def test_auto_scale_lr_keeps_a_small_batch_stage_1_from_collapsing(data, tmp_path):
    losses, lrs, psnr = _run(data, tmp_path / 'unscaled')
    assert max(lrs) == pytest.approx(4e-3, rel=0.01)
    assert max(losses) > 100 * min(losses)  # diverged
    assert psnr < 10  # the #21 symptom: a ~5 dB result
    losses, lrs, psnr = _run(data, tmp_path / 'scaled', '--auto-scale-lr')
    assert max(lrs) == pytest.approx(4e-3 / 16, rel=0.01)
    assert max(losses[2:]) < losses[0] and losses[-1] < 0.6 * losses[0]
    assert psnr > 24  # the blurry inputs themselves score ~25.9 dB
