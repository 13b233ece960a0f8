"""``tools/demo.py --quick`` (``make demo``'s short version) for every task: each claim it writes is
checked against the files it wrote.

The quick schedule trains both stages for a few iterations, so the model is not expected to beat
its baseline here; what is checked is that the numbers, the figure and the checkpoint are what
the report says they are.
"""
import json
import os
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

from helpers import REPO_ROOT, run_python

DEMO = osp.join(REPO_ROOT, 'tools', 'demo.py')
#: Panel labels of the comparison figure, per task (first word of each).
PANELS = {'deblur': ['Blurred', 'DiffIR', 'Ground'], 'sr': ['Input', 'Bicubic', 'DiffIR', 'Ground'],
          'inpaint': ['Masked', 'OpenCV', 'DiffIR', 'Ground']}


#: ``--quick`` inpainting (30 + 20 iterations): the largest mean colour cast DiffIR may leave in the
#: holes, averaged over the held-out photos (ColourError: mean absolute per-channel shift of the
#: mean colour inside the holes, 0-255 levels; Telea leaves 1.8). The quick run stops in the
#: first, overshooting iterations (the EMA only starts at iteration 100), so this is a guard
#: against a gross cast, not the full run's bound (issue 26: below 3 levels is not reachable in
#: the full run either). Measured quick runs: 47.2 with the current configs (photos 86.4, 62.8,
#: 12.5, 27.3); 28.6 with the first demo schedule (128 px crops, constant rates, no EMA), 44.9
#: with a cosine decay in stage 1, 78.5 with that decay and the current stage 2, and 89.1 with
#: the decay at half the rates in both stages, whose first iterations leave the holes near white
#: (shifts +110 to +140 on the grey photos).
QUICK_INPAINT_MAX_COLOUR_ERROR = 60.0


@pytest.fixture(scope='module', params=sorted(PANELS))
def quick(request, tmp_path_factory):
    """The report of a quick demo run of one task."""
    out = tmp_path_factory.mktemp('demo')
    run_python([DEMO, '--quick', '--task', request.param, '--out-dir', str(out)], timeout=900)
    with open(out / request.param / 'metrics.json', encoding='utf-8') as f:
        return json.load(f)


def rgb(path):
    return cv2.imread(path, cv2.IMREAD_COLOR)[..., ::-1]


def psnr_ssim(gt, pred, metric):
    """PSNR / SSIM written from scratch (skimage SSIM) with the config's Y / border settings."""
    a, b = gt.astype(np.float64), pred.astype(np.float64)
    if metric.get('convert_to') == 'Y':  # BT.601 luma, as MATLAB's rgb2ycbcr
        weights = np.array([65.481, 128.553, 24.966]) / 255.
        a, b = a @ weights + 16., b @ weights + 16.
    c = metric['crop_border']
    if c:
        a, b = a[c:-c, c:-c], b[c:-c, c:-c]
    psnr = 10 * np.log10(255. ** 2 / np.mean((a - b) ** 2))
    ssim = structural_similarity(a, b, gaussian_weights=True, sigma=1.5, data_range=255,
                                 use_sample_covariance=False,
                                 channel_axis=-1 if a.ndim == 3 else None)
    return psnr, ssim


def test_scores_match_the_written_images(quick):
    psnr_cfg, = [m for m in quick['metrics'] if m['type'] == 'PSNR']
    for name, row in quick['per_image'].items():
        gt = rgb(row['files']['gt'])
        for method in ('baseline', 'diffir'):
            psnr, ssim = psnr_ssim(gt, rgb(row['files'][method]), psnr_cfg)
            assert row[method]['PSNR'] == pytest.approx(psnr, abs=1e-4), (name, method)
            assert row[method]['SSIM'] == pytest.approx(ssim, abs=1e-5), (name, method)
    for method in ('baseline', 'diffir'):
        mean = np.mean([row[method]['PSNR'] for row in quick['per_image'].values()])
        assert quick['mean'][method]['PSNR'] == pytest.approx(mean, abs=1e-9)
    assert quick['psnr_gain_db'] == pytest.approx(
        quick['mean']['diffir']['PSNR'] - quick['mean']['baseline']['PSNR'], abs=1e-9)
    # tools/test.py scores the float outputs, the inferencer writes 8-bit PNGs: same model, same
    # metric, so the means differ by the rounding only.
    assert quick['test_py']['demo/PSNR'] == pytest.approx(quick['mean']['diffir']['PSNR'],
                                                          abs=0.05)
    assert quick['test_py']['demo/SSIM'] == pytest.approx(quick['mean']['diffir']['SSIM'],
                                                          abs=2e-3)


def test_colour_error_is_the_written_images_and_quick_inpainting_has_no_gross_cast(quick):
    casts = []
    for name, row in quick['per_image'].items():
        gt = rgb(row['files']['gt']).astype(np.float64)
        region = (cv2.imread(row['files']['mask'], cv2.IMREAD_UNCHANGED) > 0
                  if quick['task'] == 'inpaint' else np.ones(gt.shape[:2], bool))
        for method in ('baseline', 'diffir'):
            pred = rgb(row['files'][method]).astype(np.float64)
            shift = pred[region].mean(0) - gt[region].mean(0)
            np.testing.assert_allclose(row[method]['colour_shift_rgb'], shift, atol=1e-3)
            assert row[method]['ColourError'] == pytest.approx(np.abs(shift).mean(), abs=1e-4)
        casts.append(row['diffir']['ColourError'])
    assert quick['mean']['diffir']['ColourError'] == pytest.approx(np.mean(casts), abs=1e-9)
    if quick['task'] == 'inpaint':
        assert np.mean(casts) <= QUICK_INPAINT_MAX_COLOUR_ERROR, casts


def test_restored_images_are_new_and_baseline_is_the_classical_one(quick):
    for row in quick['per_image'].values():
        lq, gt = rgb(row['files']['input']), rgb(row['files']['gt'])
        restored, baseline = rgb(row['files']['diffir']), rgb(row['files']['baseline'])
        assert restored.shape == baseline.shape == gt.shape
        assert np.abs(restored.astype(float) - baseline).mean() > 0.5
        if quick['task'] == 'deblur':  # the baseline is the blurred input itself
            assert np.array_equal(baseline, lq) and not np.array_equal(lq, gt)
        elif quick['task'] == 'inpaint':  # OpenCV's Telea on the masked photo
            holes = cv2.imread(row['files']['mask'], cv2.IMREAD_UNCHANGED) > 0
            assert 0.01 < holes.mean() < 0.5
            assert (lq[holes] == 0).all() and np.array_equal(lq[~holes], gt[~holes])
            telea = cv2.inpaint(np.ascontiguousarray(lq), holes.astype(np.uint8), 3,
                                cv2.INPAINT_TELEA)
            assert np.array_equal(baseline, telea)
            # both keep the known pixels; DiffIR's holes are its own
            assert np.array_equal(restored[~holes], gt[~holes])
            assert np.abs(restored[holes].astype(float) - baseline[holes]).mean() > 0.5
        else:  # bicubic x4 of the LR input
            assert lq.shape[0] * 4 == gt.shape[0] and lq.shape[1] * 4 == gt.shape[1]
            nearest = lq.repeat(4, 0).repeat(4, 1).astype(float)
            assert np.abs(baseline - nearest).mean() > 1


def test_figure_shows_the_written_images(quick):
    fig = rgb(quick['figure']['path'])
    panels = quick['figure']['panels']
    assert [p['label'].split()[0] for p in panels] == PANELS[quick['task']]
    row = quick['per_image'][quick['figure']['photo']]
    assert [p['file'] for p in panels][-2:] == [row['files']['diffir'], row['files']['gt']]
    for panel in panels:
        top, left, h, w = panel['box']
        image = rgb(panel['file'])
        if panel['file'] == row['files']['input'] and quick['task'] == 'sr':
            image = image.repeat(4, 0).repeat(4, 1)
        assert np.array_equal(fig[top:top + h, left:left + w], image), panel['label']
    assert f'{row["diffir"]["PSNR"]:.2f} dB' in panels[-2]['label']
    assert f'{row["baseline"]["PSNR"]:.2f} dB' in panels[-3]['label']
    last = panels[-1]['box']
    assert fig.shape[1] == last[1] + last[3]  # nothing to the right of the last panel


def test_stage2_checkpoint_reproduces_the_restored_image(quick):
    from mmengine import Config

    from diffir_mm import load_official

    s1_ckpt, s2_ckpt = quick['checkpoints']
    assert all(osp.isfile(p) for p in quick['checkpoints'])
    # stage 2 was taught by this run's stage 1 (set with --cfg-options)
    s2_cfg = Config.fromfile(osp.join(osp.dirname(s2_ckpt), osp.basename(quick['configs'][1])),
                             import_custom_modules=False)
    assert s2_cfg.model.stage1_checkpoint == s1_ckpt
    gen = dict(s2_cfg.model.generator)
    kwargs = {k: v for k, v in gen.items() if k not in ('type', 'task', 'scale')}
    net = load_official(s2_ckpt, task=gen['task'], stage=2, scale=gen['scale'], **kwargs)
    row = quick['per_image'][quick['figure']['photo']]
    lq = torch.from_numpy(rgb(row['files']['input']).copy()).permute(2, 0, 1)[None] / 255.
    mask = None
    if quick['task'] == 'inpaint':  # the held-out photos are multiples of 8: no padding
        mask = torch.from_numpy(cv2.imread(row['files']['mask'], cv2.IMREAD_UNCHANGED) > 0)
        mask = mask.float()[None, None]
        lq_in = torch.cat([lq * (1 - mask), mask], dim=1)
    with torch.no_grad():
        out = net(lq if mask is None else lq_in, generator=torch.Generator().manual_seed(0))
    if mask is not None:
        out = mask * out + (1 - mask) * lq
    out = (out[0].permute(1, 2, 0).clamp(0, 1).numpy() * 255.).round()
    written = rgb(row['files']['diffir']).astype(np.float64)
    assert 10 * np.log10(255. ** 2 / np.mean((out - written) ** 2)) > 50


def test_web_app_offers_the_demo_model_as_diffir_restore_runs_it(quick, tmp_path):
    """`make app` after `make demo`: diffir-app finds the stage-2 model in the demo's folder and
    restores a held-out photo into the PNG diffir-restore writes with that config + checkpoint."""
    from diffir_mm.app.models import ModelCache, find_demo_models
    from diffir_mm.app.service import RestorationService, Settings
    from diffir_mm.cli.restore import main as restore_cli

    s2_ckpt = quick['checkpoints'][1]
    demo_dir = osp.normpath(osp.join(osp.dirname(s2_ckpt), '..', '..', '..'))  # <task>/work_dirs/s2
    (source,) = find_demo_models(demo_dir)
    assert source.label == f'demo: {quick["task"]}' and source.checkpoint == s2_ckpt
    row = quick['per_image'][quick['figure']['photo']]
    image, mask = row['files']['input'], row['files'].get('mask')
    outcome = RestorationService(ModelCache(), str(tmp_path / 'app'), ['cpu']).run(
        source, image, Settings(), mask_file=mask)
    rc = restore_cli([image, '-o', str(tmp_path / 'cli'), '--config', source.config,
                      '--checkpoint', source.checkpoint, '--ext', 'png', '--no-progress', '-q']
                     + (['--mask', mask] if mask else []))
    assert rc == 0
    with open(outcome.png, 'rb') as app, open(tmp_path / 'cli' / osp.basename(image), 'rb') as cli:
        assert app.read() == cli.read()


def test_refuses_a_foreign_non_empty_out_dir(tmp_path):
    foreign = tmp_path / 'mine'
    foreign.mkdir()
    (foreign / 'notes.txt').write_text('keep me')
    proc = run_python([DEMO, '--quick', '--out-dir', str(foreign)], check=False, timeout=120)
    assert proc.returncode != 0 and 'not created by the demo' in proc.stdout
    assert os.listdir(foreign) == ['notes.txt']
