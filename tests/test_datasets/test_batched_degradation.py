"""The batched, device-side Real-ESRGAN degradation (RealESRGANDegradationPreprocessor).

Operators are checked against independent references (OpenCV, MMagic's UnsharpMasking), the
full stage against the CPU pipeline ``train_pipeline_cpu`` on scikit-image photos (both
instrumented: applied kernels, resize factors, noise residuals, JPEG qualities), the queue by
tracking labelled samples, and a tiny stage-1 recipe trains with it end to end.
"""
import copy
import io
import math
import os
import os.path as osp
import shutil
import sys

import cv2
import numpy as np
import pytest
import torch

pytest.importorskip('mmagic.datasets')

from mmengine import Config  # noqa: E402
from mmengine.dataset import Compose, pseudo_collate  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402

import diffir_mm.registration  # noqa: E402,F401
from diffir_mm.datasets.transforms import RealESRGANRandomNoise  # noqa: E402
from diffir_mm.models.data_preprocessors import (DiffJPEG, TrainingPairQueue,  # noqa: E402
                                                 filter2d, usm_sharpen)
from diffir_mm.models.data_preprocessors import real_esrgan_preprocessor as rp  # noqa: E402
from diffir_mm.models.data_preprocessors.degradations import (  # noqa: E402
    add_gaussian_noise, add_poisson_noise, quantize8)
from helpers import (NO_EVAL_CONFIG_LINES, REPO_ROOT, SAMPLE_IMAGES,  # noqa: E402
                     TOOLS_DIR, run_python, sample_image)
from mmagic.registry import MODELS  # noqa: E402

BASES = osp.join(REPO_ROOT, 'configs', '_base_', 'datasets')
REALSR_CONFIGS = [f'diffir_sr{s}_{stage}' for s in ('', '_x2', '_x1')
                  for stage in ('s1', 's2', 's2_gan', 's2_gan_v2')]


@pytest.fixture(scope='module')
def photos():
    return [sample_image(name, 400) for name in SAMPLE_IMAGES]


def to_batch(imgs):
    return torch.from_numpy(np.stack(imgs)).permute(0, 3, 1, 2).float() / 255


def psnr(a, b):
    return (-10 * torch.log10(((a - b)**2).mean())).item()


def base_cfg(name='realsr_df2k_ost.py'):
    return Config.fromfile(osp.join(BASES, name))


def build_preprocessor(cfg, **overrides):
    init_default_scope('mmagic')
    dp = dict(cfg.realsr_data_preprocessor, mean=[0., 0., 0.], std=[255., 255., 255.],
              output_channel_order='RGB')
    dp.update(overrides)
    return MODELS.build(dp)


def loader_batch(pipeline, photos, indices):
    """Run a pipeline without its loading step on in-memory photos; collate the results."""
    init_default_scope('mmagic')
    steps = Compose(copy.deepcopy(pipeline[1:]))
    items = [steps(dict(gt=photos[i].copy(), gt_channel_order='rgb', gt_path=f'{i}.png',
                        ori_gt_shape=photos[i].shape)) for i in indices]
    return items, pseudo_collate(items)


# ----------------------------------------------------------------------------- operators
def test_filter2d_matches_opencv_per_sample(photos):
    x = to_batch(photos[:4])
    g = torch.Generator().manual_seed(0)
    kernels = torch.rand(4, 21, 21, generator=g)
    kernels /= kernels.sum((1, 2), keepdim=True)
    out = filter2d(x, kernels).permute(0, 2, 3, 1).numpy()
    for i, img in enumerate(photos[:4]):
        ref = cv2.filter2D(img.astype(np.float32) / 255, -1, kernels[i].numpy(),
                           borderType=cv2.BORDER_REFLECT_101)
        np.testing.assert_allclose(out[i], ref, atol=1e-5)
    with pytest.raises(ValueError, match='kernels for a batch'):
        filter2d(x, kernels[:3])


def test_usm_matches_mmagic_unsharp_masking(photos):
    from mmagic.datasets.transforms import UnsharpMasking
    usm = UnsharpMasking(kernel_size=51, sigma=0, weight=0.5, threshold=10, keys=['gt'])
    ref = np.stack([usm(dict(gt=img))['gt_unsharp'] for img in photos[:3]])
    ours = usm_sharpen(to_batch(photos[:3])).permute(0, 2, 3, 1).numpy() * 255
    np.testing.assert_allclose(ours, ref, atol=1e-3)


def _opencv_jpeg(img, quality):
    _, enc = cv2.imencode('.jpg', img[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    return cv2.imdecode(enc, 1)[..., ::-1]


def test_diffjpeg_tracks_opencv_and_takes_float_quality(photos):
    x = to_batch(photos[:4])
    jpeg = DiffJPEG()
    for q in (30, 50, 70, 95):
        ours = psnr(jpeg(x, torch.full((4, ), float(q))), x)
        ref = psnr(to_batch([_opencv_jpeg(img, q) for img in photos[:4]]), x)
        assert abs(ours - ref) < 1.0, (q, ours, ref)
    # one quality per sample, float qualities between integers give their own result
    mixed = jpeg(x, torch.tensor([30., 40.5, 41., 95.]))
    assert torch.equal(mixed[0], jpeg(x[:1], torch.tensor([30.]))[0])
    assert not torch.equal(mixed[1], jpeg(x[1:2], torch.tensor([41.]))[0])
    assert psnr(mixed[0], x[0]) < psnr(mixed[3], x[3])
    # 400 is not a multiple of 16: padded and cropped back
    assert mixed.shape == x.shape and 0 <= mixed.min() and mixed.max() <= 1


def test_diffjpeg_official_table_layout_is_the_transpose(photos):
    """BasicSR's DiffJPEG indexes the tables transposed: the same as libjpeg's orientation
    applied to the transposed image."""
    x = to_batch(photos[:2])[..., :192, :160]
    q = torch.tensor([35., 60.])
    official = DiffJPEG(official_table_layout=True)(x, q)
    natural = DiffJPEG(official_table_layout=False)
    torch.testing.assert_close(official, natural(x.transpose(-1, -2), q).transpose(-1, -2),
                               atol=2e-5, rtol=0)
    assert (official - natural(x, q)).abs().max() > 1e-2


@pytest.mark.parametrize('kind', ['gaussian', 'poisson'])
@pytest.mark.parametrize('gray', [False, True])
def test_noise_std_matches_cpu_transform(photos, kind, gray):
    level = 12. if kind == 'gaussian' else 1.5
    params = dict(noise_type=[kind], noise_prob=[1.], gaussian_sigma=[level, level],
                  poisson_scale=[level, level], gray_noise_prob=float(gray))
    cpu = RealESRGANRandomNoise(params)
    np.random.seed(0)
    cpu_std = [((cpu(dict(img=img.astype(np.float32)))['img'] - img) / 255).std()
               for img in photos]
    x = to_batch(photos)
    g = torch.Generator().manual_seed(0)
    n = len(photos)
    add = add_gaussian_noise if kind == 'gaussian' else add_poisson_noise
    out = add(x, torch.full((n, ), level), torch.full((n, ), gray), g)
    ours = (out - x).flatten(1).std(1).numpy()
    np.testing.assert_allclose(ours, cpu_std, rtol=0.04)
    channel_corr = np.corrcoef((out - x)[0, 0].flatten(), (out - x)[0, 1].flatten())[0, 1]
    assert (channel_corr > 0.95) if gray else (abs(channel_corr) < 0.1)


# ----------------------------------------------------------------------------- the queue
def test_queue_fills_then_mixes_batches_without_losing_pairs():
    queue = TrainingPairQueue(6)
    rng = np.random.default_rng(0)

    def labelled(start):  # pixel value = sample id, lq and gt carry the same id
        ids = torch.arange(start, start + 2).float().view(2, 1, 1, 1) / 255
        return ids.expand(2, 3, 4, 4).clone(), ids.expand(2, 3, 8, 8).clone()

    seen, out_ids = [], []
    for step in range(10):
        lq, gt = labelled(2 * step)
        seen += [2 * step, 2 * step + 1]
        out_lq, out_gt = queue(lq, gt, rng)
        ids = (out_lq[:, 0, 0, 0] * 255).round().long().tolist()
        assert ids == (out_gt[:, 0, 0, 0] * 255).round().long().tolist()  # pairs stay pairs
        if step < 3:  # filling: the batch is stored and also passes through
            assert ids == [2 * step, 2 * step + 1] and queue.ptr == 2 * step + 2
        else:
            out_ids += ids
    in_queue = (queue.lq[:, 0, 0, 0].long()).tolist()
    assert queue.lq.shape == (6, 3, 4, 4) and queue.gt.shape == (6, 3, 8, 8)
    assert sorted(out_ids + in_queue) == seen  # nothing lost, nothing duplicated
    mixed = [out_ids[i:i + 2] for i in range(0, len(out_ids), 2)]
    assert any(a // 2 != b // 2 for a, b in mixed), 'no batch mixes samples of two batches'
    with pytest.raises(ValueError, match='divisible'):
        TrainingPairQueue(7)(*labelled(0), rng)
    # the recipes' queue: 180 pairs, 20 batches of 9 to fill it
    queue = TrainingPairQueue(base_cfg().realsr_data_preprocessor.queue_size)
    lq, gt = torch.rand(9, 3, 4, 4), torch.rand(9, 3, 16, 16)
    for step in range(21):
        out_lq, _ = queue(quantize8(lq * 0 + step / 255), quantize8(gt), rng)
    assert queue.lq.shape == (180, 3, 4, 4) and queue.ptr == 180
    assert (out_lq[:, 0, 0, 0] * 255).round().max() < 20  # the 21st batch came from the queue


# ----------------------------------------------------------------------------- the stage
def test_realsr_configs_use_the_batched_stage():
    for name in REALSR_CONFIGS:
        cfg = Config.fromfile(osp.join(REPO_ROOT, 'configs', f'{name}.py'))
        dp = cfg.model.data_preprocessor
        assert dp.type == 'RealESRGANDegradationPreprocessor', name
        assert dp.scale == cfg.model.generator.scale, name
        assert dp.queue_size == 180 and dp.queue_size % cfg.train_dataloader.batch_size == 0
        assert dp.degrade_unsharp_gt == name.endswith('_v2'), name
        assert dp.mean == [0., 0., 0.] and dp.std == [255., 255., 255.]
        steps = [t['type'] for t in cfg.train_dataloader.dataset.pipeline]
        assert steps[-2:] == ['GenerateRealESRGANKernels', 'PackInputs'], name
        assert 'train_pipeline_cpu' in cfg and 'train_pipeline_cpu_usm_source' in cfg


def test_batched_and_cpu_settings_are_the_same_values():
    cfg = base_cfg()
    cpu = {t['type']: [] for t in cfg.train_pipeline_cpu}
    for t in cfg.train_pipeline_cpu:
        cpu[t['type']].append(t)
    final = cfg.train_pipeline_cpu[[t['type'] for t in cfg.train_pipeline_cpu].index(
        'RandomChoice')]
    dp = cfg.realsr_data_preprocessor
    kernels = cfg.train_pipeline[-2]['kernels']
    blur1, blur2 = cpu['RealESRGANRandomBlur']
    assert kernels['kernel1'] == blur1['params']
    assert dict(kernels['kernel2'], prob=blur2['params']['prob']) == blur2['params']
    assert dp.second_blur_prob == blur2['params']['prob'] == 0.8
    assert kernels['sinc_kernel'] == final['transforms'][0][1]['params']
    resize1, resize2 = cpu['RealESRGANRandomResize']
    assert dict(dp.first_resize, reference='input') == resize1['params']
    assert dict(dp.second_resize, reference='target') == resize2['params']
    noise1, noise2 = cpu['RealESRGANRandomNoise']
    assert dp.first_noise == noise1['params'] and dp.second_noise == noise2['params']
    assert dp.first_jpeg == cpu['RandomJPEGCompression'][0]['params'] == dict(quality=[30, 95])
    assert dp.final_sinc_first_prob == final['prob'][0] == 0.5
    assert dp.gt_size == 256 and dp.scale == 4
    for name, scale in (('realsr_df2k_ost_x2.py', 2), ('realsr_df2k_ost_x1.py', 1)):
        assert base_cfg(name).realsr_data_preprocessor.scale == scale


def _sigma(kernel):
    """Effective blur sigma of a kernel: sqrt of its mean second central moment."""
    k = np.asarray(kernel, np.float64)
    k = k / k.sum()
    ys, xs = np.mgrid[:k.shape[0], :k.shape[1]]
    my, mx = (k * ys).sum(), (k * xs).sum()
    return math.sqrt(max(0., 0.5 * ((k * (ys - my)**2).sum() + (k * (xs - mx)**2).sum())))


def _is_pulse(kernel):
    return float(np.asarray(kernel).max()) == 1.0


def _cpu_stats(cfg, photos, n, monkeypatch):
    """Instrument every degradation step of train_pipeline_cpu and run it ``n`` times."""
    init_default_scope('mmagic')
    pipe = Compose(copy.deepcopy(cfg.train_pipeline_cpu[1:]))

    def walk(t):
        yield t
        for sub in getattr(t, 'transforms', []) or []:
            yield from walk(sub)

    found = {}
    for t in walk(pipe):
        found.setdefault(type(t).__name__, []).append(t)
    blurs, resizes = found['RealESRGANRandomBlur'], found['RealESRGANRandomResize']
    noises = found['RealESRGANRandomNoise']
    rec = {}

    def spy_kernel(t, tag):
        orig = t.get_kernel

        def get_kernel():
            k = orig()
            rec.setdefault(tag, []).append(k)
            return k
        t.get_kernel = get_kernel

    def spy_transform(t, tag, fn):
        orig = t.transform

        def transform(results):
            before = results['img']
            out = orig(results)
            rec.setdefault(tag, []).append(fn(before, out['img']))
            return out
        t.transform = transform

    for t, tag in zip(blurs, ('k1', 'k2', 'sinc', 'sinc')):
        spy_kernel(t, tag)
    for t, tag in zip(resizes[:2], ('f1', 'f2')):
        ref = 400 if tag == 'f1' else 400 / cfg.scale
        spy_transform(t, tag, lambda a, b, ref=ref: b.shape[0] / (a.shape[0] if ref == 400
                                                                   else ref))
    for t, tag in zip(noises, ('n1', 'n2')):
        spy_transform(t, tag, lambda a, b: float(((b - a) / 255.).std()))
    qualities = []
    encode = cv2.imencode

    def imencode(ext, img, params):
        qualities.append(params[1])
        return encode(ext, img, params)
    monkeypatch.setattr(cv2, 'imencode', imencode)
    np.random.seed(0)
    k2_before, sinc_before = 0, 0
    applied2, applied_sinc = [], []
    for i in range(n):
        pipe(dict(gt=photos[i % len(photos)].copy(), gt_path=f'{i}.png', gt_channel_order='rgb'))
        applied2.append(len(rec.get('k2', [])) - k2_before)
        applied_sinc.append(len(rec.get('sinc', [])) - sinc_before)
        k2_before, sinc_before = len(rec.get('k2', [])), len(rec.get('sinc', []))
    monkeypatch.undo()
    return dict(sigma1=[_sigma(k) for k in rec['k1']], sigma2=[_sigma(k) for k in rec['k2']],
                blur2=applied2, sinc=applied_sinc, f1=rec['f1'], f2=rec['f2'], n1=rec['n1'],
                n2=rec['n2'], q=qualities)


def _device_stats(cfg, photos, batches, batch_size, monkeypatch):
    """Instrument the batched stage; every statistic is averaged per batch (the unit of its
    batch-level draws)."""
    pre = build_preprocessor(cfg, seed=0, queue_size=0)
    calls = []

    def spy(name, fn):
        def wrapped(img, *args, **kwargs):
            out = fn(img, *args, **kwargs)
            calls.append((name, img, out, args))
            return out
        monkeypatch.setattr(rp, name, wrapped)

    for name in ('filter2d', 'resize', 'add_gaussian_noise', 'add_poisson_noise'):
        spy(name, getattr(rp, name))
    forward = pre.jpeg.forward

    def jpeg(img, quality):
        calls.append(('jpeg', img, None, (quality.clone(), )))
        return forward(img, quality)
    monkeypatch.setattr(pre.jpeg, 'forward', jpeg)
    stats = {key: [] for key in ('sigma1', 'sigma2', 'blur2', 'sinc', 'f1', 'f2', 'n1', 'n2')}
    qualities = []
    for b in range(batches):
        calls.clear()
        idx = [(b * batch_size + i) % len(photos) for i in range(batch_size)]
        _, data = loader_batch(cfg.train_pipeline, photos, idx)
        pre(data, True)
        blurs = [c for c in calls if c[0] == 'filter2d']
        resizes = [c for c in calls if c[0] == 'resize']
        noises = [c for c in calls if c[0].startswith('add_')]
        assert len(resizes) == 3 and len(noises) == 2 and len([c for c in calls
                                                                if c[0] == 'jpeg']) == 2
        assert all(c[1].shape[0] == batch_size for c in calls)  # one call for the batch
        stats['sigma1'].append(np.mean([_sigma(k) for k in blurs[0][3][0].numpy()]))
        stats['blur2'].append(float(len(blurs) == 3))
        if len(blurs) == 3:
            stats['sigma2'].append(np.mean([_sigma(k) for k in blurs[1][3][0].numpy()]))
        stats['sinc'].append(np.mean([not _is_pulse(k) for k in blurs[-1][3][0].numpy()]))
        stats['f1'].append(resizes[0][2].shape[-2] / 400)
        stats['f2'].append(resizes[1][2].shape[-2] / (400 / cfg.scale))
        for tag, c in zip(('n1', 'n2'), noises):
            stats[tag].append(float((c[2] - c[1]).flatten(1).std(1).mean()))
        qualities += [q for c in calls if c[0] == 'jpeg' for q in c[3][0].tolist()]
    monkeypatch.undo()
    stats['q'] = qualities
    return stats


def test_batched_statistics_match_the_cpu_pipeline(photos, monkeypatch):
    """Blur sigma, resize factors, noise std and JPEG quality of the two implementations agree
    within 4 standard errors (units: samples for the CPU pipeline, batches for the batched
    stage, whose resize and noise-type draws are per batch)."""
    cfg = base_cfg()
    cpu = _cpu_stats(cfg, photos, 120, monkeypatch)
    dev = _device_stats(cfg, photos, 60, 2, monkeypatch)
    for key in ('sigma1', 'sigma2', 'blur2', 'sinc', 'f1', 'f2', 'n1', 'n2', 'q'):
        a, b = np.asarray(cpu[key], float), np.asarray(dev[key], float)
        tol = 4 * math.sqrt(a.var() / len(a) + b.var() / len(b)) + 1e-6
        assert abs(a.mean() - b.mean()) < tol, (key, a.mean(), b.mean(), tol)
    assert np.mean(dev['blur2']) == pytest.approx(0.8, abs=0.2)
    assert np.mean(cpu['sinc']) == pytest.approx(0.8, abs=0.15)
    # resize scale distribution: up / down / keep fractions of the first resize
    for values in (cpu['f1'], dev['f1']):
        f = np.asarray(values)
        assert f.min() >= 0.15 - 0.01 and f.max() <= 1.5
        assert 0.45 < np.mean(f < 0.999) < 0.9 and np.mean(f > 1.001) < 0.4
    # JPEG quality range: CPU integers, batched floats, both within [30, 95]
    q_cpu, q_dev = np.asarray(cpu['q']), np.asarray(dev['q'])
    assert q_cpu.min() >= 30 and q_cpu.max() <= 95 and np.all(q_cpu == np.round(q_cpu))
    assert q_dev.min() >= 30 and q_dev.max() <= 95 and np.mean(q_dev != np.round(q_dev)) > 0.9
    assert q_dev.max() - q_dev.min() > 50


def test_draws_are_per_batch_and_per_sample():
    cfg = base_cfg()
    pre = build_preprocessor(cfg, seed=3)
    draws = [pre.draw(9, torch.device('cpu')) for _ in range(400)]
    # batch-level values are scalars; their distributions follow the settings
    first = np.array([d['first_factor'] for d in draws])
    assert np.mean(first < 1) == pytest.approx(0.7, abs=0.07)
    assert np.mean(first == 1) == pytest.approx(0.1, abs=0.05)
    assert np.mean([d['first_noise']['kind'] == 'gaussian' for d in draws]) == pytest.approx(
        0.5, abs=0.08)
    assert np.mean([d['second_blur'] for d in draws]) == pytest.approx(0.8, abs=0.06)
    assert np.mean([d['sinc_first'] for d in draws]) == pytest.approx(0.5, abs=0.08)
    assert {d['first_mode'] for d in draws} == {'area', 'bilinear', 'bicubic'}
    # per-sample values: one per sample, varying inside a batch
    d = draws[0]
    for values in (d['first_noise']['level'], d['jpeg1'], d['jpeg2']):
        assert values.shape == (9, ) and len(set(values.tolist())) == 9
    gray = torch.stack([d['first_noise']['gray'] for d in draws]).float()
    assert gray.mean().item() == pytest.approx(0.4, abs=0.03)
    gauss = torch.cat([d['second_noise']['level'] for d in draws
                       if d['second_noise']['kind'] == 'gaussian'])
    assert gauss.min() >= 1 and gauss.max() <= 25
    assert gauss.mean().item() == pytest.approx(13, abs=0.5)


def _run(pre, photos, steps, batch_size=2, pipeline=None, seed_offset=0):
    cfg = base_cfg()
    outs = []
    for s in range(steps):
        idx = [(s * batch_size + i + seed_offset) % len(photos) for i in range(batch_size)]
        np.random.seed(100 + s)  # same loader draws (kernels, crops) in every run
        _, data = loader_batch(pipeline or cfg.train_pipeline, photos, idx)
        outs.append(pre(data, True))
    return outs


def test_seeded_reproducible_and_restored_from_a_checkpoint(photos):
    cfg = base_cfg()
    a, b, c = (build_preprocessor(cfg, seed=s, queue_size=4) for s in (7, 7, 8))
    out_a, out_b, out_c = (_run(p, photos, 3) for p in (a, b, c))
    for x, y in zip(out_a, out_b):
        assert torch.equal(x['inputs'], y['inputs'])
        assert torch.equal(x['data_samples'].gt_img, y['data_samples'].gt_img)
    assert not torch.equal(out_a[-1]['inputs'], out_c[-1]['inputs'])
    # the state (queue + generators) goes through torch.save / weights_only load
    buf = io.BytesIO()
    torch.save(a.state_dict(), buf)
    buf.seek(0)
    restored = build_preprocessor(cfg, seed=123, queue_size=4)
    restored.load_state_dict(torch.load(buf, weights_only=True))
    assert restored.queue.ptr == 4
    nxt_a = _run(a, photos, 2)
    nxt_r = _run(restored, photos, 2)
    for x, y in zip(nxt_a, nxt_r):
        assert torch.equal(x['inputs'], y['inputs'])
        assert torch.equal(x['data_samples'].gt_unsharp, y['data_samples'].gt_unsharp)


@pytest.mark.parametrize('base,scale', [('realsr_df2k_ost.py', 4),
                                        ('realsr_df2k_ost_x2.py', 2),
                                        ('realsr_df2k_ost_x1.py', 1)])
def test_outputs_are_training_pairs(photos, base, scale):
    cfg = base_cfg(base)
    pre = build_preprocessor(cfg, seed=0)
    np.random.seed(0)
    _, data = loader_batch(cfg.train_pipeline, photos, [0, 1, 2])
    out = pre(data, True)
    lq, samples = out['inputs'], out['data_samples']
    assert lq.shape == (3, 3, 256 // scale, 256 // scale)
    assert samples.gt_img.shape == (3, 3, 256, 256) and samples.gt_unsharp.shape == (3, 3, 256,
                                                                                        256)
    assert torch.equal(lq * 255, (lq * 255).round())  # 8-bit levels, normalised by 255
    # each GT patch is an exact crop of its (possibly flipped) photo
    gt = (samples.gt_img * 255).round().byte().permute(0, 2, 3, 1).numpy()
    for i in range(3):
        found = False
        for src in (photos[i], np.ascontiguousarray(photos[i][:, ::-1])):
            res = cv2.matchTemplate(src, gt[i][:32, :32], cv2.TM_SQDIFF)
            left, top = cv2.minMaxLoc(res)[2]
            found |= np.array_equal(src[top:top + 256, left:left + 256], gt[i])
        assert found
    # GT sharpened after the queue
    torch.testing.assert_close(samples.gt_unsharp, usm_sharpen(samples.gt_img) * 255)


def test_v2_degrades_the_sharpened_gt(photos):
    cfg = base_cfg()
    plain = build_preprocessor(cfg, seed=5, queue_size=0)
    usm = build_preprocessor(cfg, seed=5, queue_size=0, degrade_unsharp_gt=True)
    a, b = _run(plain, photos, 1)[0], _run(usm, photos, 1)[0]
    assert torch.equal(a['data_samples'].gt_img, b['data_samples'].gt_img)
    assert not torch.equal(a['inputs'], b['inputs'])
    with pytest.raises(ValueError, match='unsharp'):
        build_preprocessor(cfg, unsharp=None, degrade_unsharp_gt=True)


def test_validation_and_cpu_pipeline_bypass_the_stage(photos):
    """Real LQ inputs (validation, or train_pipeline_cpu) are handled as DataPreprocessor."""
    cfg = base_cfg()
    pre = build_preprocessor(cfg, seed=0)
    plain = MODELS.build(dict(type='DataPreprocessor', mean=[0., 0., 0.], std=[255.] * 3,
                              output_channel_order='RGB'))
    np.random.seed(0)
    items, _ = loader_batch(cfg.train_pipeline_cpu, photos, [0, 1])
    for training in (True, False):
        a = pre(pseudo_collate(copy.deepcopy(items)), training)
        b = plain(pseudo_collate(copy.deepcopy(items)), training)
        assert torch.equal(a['inputs'], b['inputs'])
        assert torch.equal(a['data_samples'].gt_img, b['data_samples'].gt_img)
    assert pre.queue.ptr == 0


def test_tiny_stage1_recipe_trains_with_the_batched_stage(photos):
    """configs/diffir_sr_s1.py with a tiny generator: two optimiser steps on batched pairs."""
    from mmengine.optim import OptimWrapper
    init_default_scope('mmagic')
    cfg = Config.fromfile(osp.join(REPO_ROOT, 'configs', 'diffir_sr_s1.py'))
    cfg.model.generator.update(dim=8, num_blocks=[1, 1, 1, 1], num_refinement_blocks=1,
                               n_encoder_res=1)
    cfg.model.data_preprocessor.update(seed=0)
    model = MODELS.build(cfg.model)
    wrapper = OptimWrapper(torch.optim.Adam(model.generator.parameters(), lr=1e-3))
    before = [p.detach().clone() for p in model.generator.parameters()]
    for step in range(2):
        np.random.seed(step)
        _, data = loader_batch(cfg.train_pipeline, photos, [step, step + 1, step + 2])
        logs = model.train_step(data, wrapper)
        assert math.isfinite(float(logs['loss_pix']))
    assert model.data_preprocessor.queue.ptr == 6
    moved = max((p - q).abs().max().item() for p, q in zip(model.generator.parameters(), before))
    assert moved > 0
    state = model.state_dict()
    assert 'data_preprocessor._extra_state' in state


def _resume_config(root):
    return f"""
_base_ = ['{REPO_ROOT}/configs/diffir_sr_s1.py']
model = dict(generator=dict(dim=8, num_blocks=[1, 1, 1, 1], num_refinement_blocks=1,
                            n_encoder_res=1),
             data_preprocessor=dict(queue_size=4))
train_dataloader = dict(batch_size=2, num_workers=0, dataset=dict(
    data_root='{root}', data_prefix=dict(gt='GT_sub'), ann_file=''))
train_cfg = dict(max_iters=4, val_interval=1000)
{NO_EVAL_CONFIG_LINES}default_hooks = dict(logger=dict(interval=1),
                     checkpoint=dict(interval=2, save_best=None))
randomness = dict(seed=0)
"""


def test_tools_train_resumes_queue_and_generators_bit_exactly(photos, tmp_path):
    """tools/train.py on configs/diffir_sr_s1.py (tiny network, queue of 4 = two batches): the
    queue is full at iteration 2 and mixes batches afterwards; resuming from iteration 2
    reproduces iteration 4 exactly, and the checkpoint holds the queue."""
    from diffir_mm.checkpoint import read_checkpoint
    for name in SAMPLE_IMAGES[:3]:
        path = tmp_path / 'data' / 'GT_sub' / f'{name}.png'
        os.makedirs(path.parent, exist_ok=True)
        cv2.imwrite(str(path), photos[SAMPLE_IMAGES.index(name)][..., ::-1])
    cfg = tmp_path / 'resume_s1.py'
    cfg.write_text(_resume_config(tmp_path / 'data'))
    train = osp.join(TOOLS_DIR, 'train.py')
    log = run_python([train, str(cfg), '--work-dir', str(tmp_path / 'full')]).stdout
    assert 'synthesised on the device (batched)' in log
    resumed = tmp_path / 'resumed'
    os.makedirs(resumed)
    shutil.copy(tmp_path / 'full' / 'iter_2.pth', resumed)
    (resumed / 'last_checkpoint').write_text(str(resumed / 'iter_2.pth'))
    run_python([train, str(cfg), '--work-dir', str(resumed), '--resume'])
    load = lambda p: read_checkpoint(p)['state_dict']  # noqa
    mid, full, again = (load(p) for p in (tmp_path / 'full' / 'iter_2.pth',
                                          tmp_path / 'full' / 'iter_4.pth',
                                          resumed / 'iter_4.pth'))
    state = mid['data_preprocessor._extra_state']
    assert state['queue']['ptr'] == 4 and state['queue']['lq'].shape == (4, 3, 64, 64)
    assert not torch.equal(full['data_preprocessor._extra_state']['queue']['lq'],
                           state['queue']['lq'])
    assert full.keys() == again.keys()
    for key, value in full.items():
        if key == 'data_preprocessor._extra_state':
            assert torch.equal(value['queue']['lq'], again[key]['queue']['lq'])
            assert torch.equal(value['queue']['gt'], again[key]['queue']['gt'])
        else:
            assert torch.equal(value, again[key]), key


if __name__ == '__main__':
    sys.exit(pytest.main([__file__, '-q']))
