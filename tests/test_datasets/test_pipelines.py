"""The dataset bases in configs/_base_/datasets on tiny generated folders.

Images are scikit-image's bundled photos (astronaut, chelsea, coffee) saved
as PNG with the folder layouts documented in docs/user_guides/data_preparation.md.
"""
import copy
import glob
import json
import os
import os.path as osp
import uuid

import cv2
import numpy as np
import pytest
import torch

pytest.importorskip('mmagic.datasets')

import skimage.data  # noqa: E402
from mmengine import Config  # noqa: E402
from mmengine.dataset import pseudo_collate  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402

import diffir_mm.registration  # noqa: E402,F401
from mmagic.registry import DATASETS, MODELS  # noqa: E402

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
BASES = osp.join(REPO, 'configs', '_base_', 'datasets')
RUNTIME = osp.join(REPO, 'configs', '_base_', 'default_runtime.py')
NAMES = ('astronaut', 'chelsea', 'coffee')


def photo(name, h=None, w=None):
    """RGB uint8 photo, resized to (h, w) when given."""
    img = np.ascontiguousarray(getattr(skimage.data, name)()[..., :3])
    if h is not None:
        img = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
    return img


def write(path, rgb):
    os.makedirs(osp.dirname(path), exist_ok=True)
    assert cv2.imwrite(path, np.ascontiguousarray(rgb[..., ::-1]))


def bicubic(rgb, scale):
    h, w = rgb.shape[:2]
    return cv2.resize(
        rgb, (w // scale, h // scale), interpolation=cv2.INTER_CUBIC)


def load(base):
    return Config.fromfile(osp.join(BASES, base))


def build(dataset_cfg, data_root):
    init_default_scope('mmagic')
    cfg = copy.deepcopy(dataset_cfg)
    cfg['data_root'] = data_root
    return DATASETS.build(cfg)


def chw(sample):
    inputs = sample['inputs']
    gt = sample['data_samples'].gt_img if 'gt_img' in sample[
        'data_samples'] else None
    return tuple(inputs.shape), None if gt is None else tuple(gt.shape)


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    """All layouts of docs/user_guides/data_preparation.md, with tiny images."""
    root = str(tmp_path_factory.mktemp('datasets'))
    # GoPro / HIDE: 512x512 train crops, 272x288 test frames
    for name in NAMES:
        sharp = photo(name, 512, 512)
        write(f'{root}/GoPro/train/target/{name}.png', sharp)
        write(f'{root}/GoPro/train/input/{name}.png',
              cv2.GaussianBlur(sharp, (9, 9), 3))
        sharp = photo(name, 272, 288)
        blurry = cv2.GaussianBlur(sharp, (9, 9), 3)
        for ds in ('GoPro', 'HIDE'):
            write(f'{root}/{ds}/test/target/{name}.png', sharp)
            write(f'{root}/{ds}/test/input/{name}.png', blurry)
    # DF2K+OST GT-only (native sizes: 512x512, 300x451 (< 400: padded),
    # 400x600); RealSR Canon / NTIRE2020 pairs; LR-only folder
    for name in NAMES:
        write(f'{root}/DF2K_OST/GT_sub/{name}.png', photo(name))
        hr = photo(name, 96, 96)
        for scale in (4, 2):
            write(f'{root}/RealSR/Canon/Test/{scale}/HR/{name}.png', hr)
            write(f'{root}/RealSR/Canon/Test/{scale}/LR/{name}.png',
                  bicubic(hr, scale))
        write(f'{root}/NTIRE2020-Track1/track1-valid-gt/{name}.png', hr)
        write(f'{root}/NTIRE2020-Track1/track1-valid-input/{name}.png',
              bicubic(hr, 4))
        write(f'{root}/RealSR_LR/{name}.png', bicubic(hr, 4))
    # DF2K bicubic pairs and the benchmarks (HR 70x66: not a multiple of 4)
    for name in NAMES:
        hr = photo(name, 320, 300)
        write(f'{root}/DF2K/HR_sub/{name}.png', hr)
        for scale in (4, 2):
            write(f'{root}/DF2K/LR_bicubic_sub/X{scale}/{name}.png',
                  bicubic(hr, scale))
    for i, bench in enumerate(
        ('Set14', 'Urban100', 'Manga109', 'General100', 'DIV2K100')):
        hr = photo(NAMES[i % 3], 70, 66)
        write(f'{root}/benchmark/{bench}/HR/img.png', hr)
        for scale in (4, 2):
            write(f'{root}/benchmark/{bench}/LRbicx{scale}/img.png',
                  bicubic(hr, scale))
    return root


# ---------------------------------------------------------------------------
# gopro_deblur.py
# ---------------------------------------------------------------------------
def test_gopro_train(data):
    cfg = load('gopro_deblur.py')
    ds = build(cfg.train_dataloader.dataset, f'{data}/GoPro')
    assert len(ds) == 3
    np.random.seed(0)
    sample = ds[0]
    assert chw(sample) == ((3, 512, 512), (3, 512, 512))
    assert sample['data_samples'].metainfo['img_channel_order'] == 'rgb'
    # the geometric augmentations are applied identically to input and GT
    inp = sample['inputs'].float()
    gt = sample['data_samples'].gt_img.float()
    ref_in = cv2.imread(ds.get_data_info(0)['img_path'])[..., ::-1]
    ref_gt = cv2.imread(ds.get_data_info(0)['gt_path'])[..., ::-1]
    found = False
    for k in range(4):
        for flip in (False, True):
            a, b = np.rot90(ref_in, k), np.rot90(ref_gt, k)
            if flip:
                a, b = a[:, ::-1], b[:, ::-1]
            if np.array_equal(inp.permute(1, 2, 0).numpy(), a) and \
                    np.array_equal(gt.permute(1, 2, 0).numpy(), b):
                found = True
    assert found


def test_gopro_val_test_inference(data):
    cfg = load('gopro_deblur.py')
    val = build(cfg.val_dataloader.dataset, f'{data}/GoPro')
    sample = val[0]
    assert chw(sample) == ((3, 256, 256), (3, 256, 256))
    ref = cv2.imread(val.get_data_info(0)['gt_path'])[..., ::-1]
    top, left = (272 - 256) // 2, (288 - 256) // 2
    assert np.array_equal(
        sample['data_samples'].gt_img.permute(1, 2, 0).numpy(),
        ref[top:top + 256, left:left + 256])
    loaders = cfg.test_dataloader
    assert [dl.dataset.data_prefix.img for dl in loaders] == ['test/input'] * 2
    for dl, root in zip(loaders, ('GoPro', 'HIDE')):
        ds = build(dl.dataset, f'{data}/{root}')
        assert chw(ds[1]) == ((3, 272, 288), (3, 272, 288))
    prefixes = [[m.prefix for m in ev.metrics] for ev in cfg.test_evaluator]
    assert prefixes == [['GoPro'] * 3, ['HIDE'] * 3]  # PSNR, SSIM, MatlabSSIM
    assert cfg.test_cfg.type == 'MultiTestLoop'
    infer = build(
        dict(cfg.test_dataloader[0].dataset, pipeline=cfg.inference_pipeline),
        f'{data}/GoPro')
    assert chw(infer[0]) == ((3, 272, 288), None)


def test_gt_reaches_metrics_as_bgr(data):
    """RGB pipeline -> DataPreprocessor: the network gets RGB in [0, 1],
    metrics get the GT as BGR 0-255 (what mmagic's metrics expect)."""
    cfg = load('gopro_deblur.py')
    ds = build(cfg.test_dataloader[0].dataset, f'{data}/GoPro')
    batch = pseudo_collate([ds[0], ds[1]])
    pre = MODELS.build(
        dict(type='DataPreprocessor', mean=[0.] * 3, std=[255.] * 3))
    out = pre(batch, training=False)
    rgb_in = cv2.imread(ds.get_data_info(0)['img_path'])[..., ::-1]
    assert torch.allclose(out['inputs'][0].permute(1, 2, 0),
                          torch.from_numpy(rgb_in.copy()).float() / 255)
    bgr_gt = cv2.imread(ds.get_data_info(0)['gt_path'])
    assert torch.equal(out['data_samples'].gt_img[0].permute(1, 2, 0),
                       torch.from_numpy(bgr_gt).float())


# ---------------------------------------------------------------------------
# realsr_df2k_ost.py (+ _x2, _x1)
# ---------------------------------------------------------------------------
@pytest.mark.parametrize('base,scale', [('realsr_df2k_ost.py', 4),
                                        ('realsr_df2k_ost_x2.py', 2),
                                        ('realsr_df2k_ost_x1.py', 1)])
def test_realsr_train_degradation(data, base, scale):
    cfg = load(base)
    assert cfg.scale == scale
    ds = build(dict(cfg.train_dataloader.dataset, pipeline=cfg.train_pipeline_cpu),
               f'{data}/DF2K_OST')
    np.random.seed(scale)
    lq = 256 // scale
    indices = range(3) if scale == 4 else [1]  # index 1 is padded to 400
    for idx in indices:
        sample = ds[idx]
        assert chw(sample) == ((3, lq, lq), (3, 256, 256))
        assert sample['inputs'].dtype == torch.uint8  # rounded to 8 bit
        assert tuple(sample['data_samples'].gt_unsharp.shape) == (3, 256, 256)


@pytest.mark.parametrize('base,scale', [('realsr_df2k_ost.py', 4),
                                        ('realsr_df2k_ost_x2.py', 2)])
def test_realsr_usm_source_pipeline(data, base, scale):
    """GAN V2: the LQ is synthesised from the unsharp-masked GT."""
    cfg = load(base)
    plain = [t['type'] for t in cfg.train_pipeline_cpu]
    usm = [t['type'] for t in cfg.train_pipeline_cpu_usm_source]
    i = plain.index('CopyValues')
    assert usm[:i] == plain[:i] and usm[i + 2:] == plain[i + 1:]
    assert usm[i:i + 2] == ['UnsharpMasking', 'CopyValues']
    assert cfg.train_pipeline_cpu_usm_source[i + 1].src_keys == ['gt_unsharp']
    assert [t for t in cfg.train_pipeline_cpu_usm_source
            if t['type'] == 'SetValues'][0].dictionary.scale == scale
    ds = build(
        dict(cfg.train_dataloader.dataset,
             pipeline=cfg.train_pipeline_cpu_usm_source), f'{data}/DF2K_OST')
    np.random.seed(1)
    assert chw(ds[0]) == ((3, 256 // scale, 256 // scale), (3, 256, 256))


def test_realsr_official_degradation_settings():
    cfg = load('realsr_df2k_ost.py')
    steps = {}
    for t in cfg.train_pipeline_cpu:
        steps.setdefault(t['type'], []).append(t)
    first_blur, second_blur = steps['RealESRGANRandomBlur']
    assert first_blur.params.sigma_x == [0.2, 3]
    assert second_blur.params.sigma_x == [0.2, 1.5]
    assert second_blur.params.prob == 0.8
    assert sum(first_blur.params.kernel_prob) == pytest.approx(1)
    noise1, noise2 = steps['RealESRGANRandomNoise']
    assert noise1.params.gaussian_sigma == [1, 30]
    assert noise2.params.poisson_scale == [0.05, 2.5]
    resize1, resize2 = steps['RealESRGANRandomResize']
    assert resize1.params.resize_mode_prob == [0.2, 0.7, 0.1]
    assert resize2.params.reference == 'target'
    assert steps['RandomJPEGCompression'][0].params.quality == [30, 95]
    final = steps['RandomChoice'][0]
    orders = [[t['type'] for t in branch] for branch in final.transforms]
    assert orders == [[
        'RealESRGANRandomResize', 'RealESRGANRandomBlur',
        'RandomJPEGCompression'
    ], [
        'RandomJPEGCompression', 'RealESRGANRandomResize',
        'RealESRGANRandomBlur'
    ]]
    assert final.transforms[0][1].params.prob == 0.8  # final_sinc_prob
    assert steps['Flip'][0]['keys'] == ['gt'] and 'RandomTransposeHW' \
        not in steps
    assert steps['PairedRandomCrop'][0].gt_patch_size == 256


def test_realsr_test_sets(data):
    cfg = load('realsr_df2k_ost.py')
    canon, ntire, aim = cfg.test_dataloader
    assert aim.dataset.data_prefix == dict(img='valid-input-noisy', gt='valid-gt-clean')
    for dl, root in ((canon, 'RealSR'), (ntire, 'NTIRE2020-Track1')):
        ds = build(dl.dataset, f'{data}/{root}')
        assert len(ds) == 3
        assert chw(ds[0]) == ((3, 24, 24), (3, 96, 96))
    ds = build(cfg.val_dataloader.dataset, f'{data}/NTIRE2020-Track1')
    assert chw(ds[0]) == ((3, 24, 24), (3, 96, 96))
    metrics = [[m.type for m in ev.metrics] for ev in cfg.test_evaluator]
    assert metrics == [['PSNR', 'SSIM', 'LPIPS', 'DISTS', 'NoRefNIQE']] * 3
    for metric in cfg.test_evaluator[0].metrics[:2]:  # official Metric/PSNR.py
        assert metric.crop_border == 4 and metric.convert_to == 'Y'
    # x2: RealSR Canon Test/2 only
    cfg2 = load('realsr_df2k_ost_x2.py')
    assert len(cfg2.test_dataloader) == 1
    ds = build(cfg2.test_dataloader[0].dataset, f'{data}/RealSR')
    assert chw(ds[0]) == ((3, 48, 48), (3, 96, 96))
    ds = build(cfg2.val_dataloader.dataset, f'{data}/RealSR')
    assert chw(ds[0]) == ((3, 48, 48), (3, 96, 96))
    # LR only: no GT in the samples
    ds = build(cfg.lr_only_test_dataloader.dataset, f'{data}/RealSR_LR')
    assert chw(ds[0]) == ((3, 24, 24), None)


def _random_metric_weights(evaluators):
    for ev in evaluators:
        for m in ev['metrics']:
            if m['type'] in ('LPIPS', 'DISTS'):
                m['backbone_path'] = None
                m.pop('weights_path', None)
                m['allow_random_weights'] = True
                m['device'] = 'cpu'


def _tiny_sr_model():
    return dict(
        type='BaseEditModel',
        generator=dict(
            type='SRCNNNet',
            channels=(3, 4, 4, 3),
            kernel_sizes=(3, 1, 3),
            upscale_factor=4),
        pixel_loss=dict(type='L1Loss'),
        data_preprocessor=dict(
            type='DataPreprocessor', mean=[0.] * 3, std=[255.] * 3))


#: Config keys a test run needs; the rest (training pipelines, ...) is
#: dropped so that mmengine's yapf formatting of the config stays fast.
RUN_KEYS = ('default_scope', 'custom_imports', 'default_hooks', 'env_cfg',
            'log_level', 'log_processor', 'visualizer', 'custom_hooks',
            'model', 'test_dataloader', 'test_evaluator', 'test_cfg')


def _run_test(cfg_path, work_dir):
    from mmengine.runner import Runner
    full = Config.fromfile(cfg_path)
    cfg = Config({k: full[k] for k in RUN_KEYS if k in full})
    cfg.work_dir = work_dir
    # mmengine's visualizer / message hub are global instances named after
    # the experiment: two runs within the same second must not share one.
    cfg.experiment_name = f'{osp.basename(cfg_path)}_{uuid.uuid4().hex}'
    runner = Runner.from_cfg(cfg)
    runner.test()
    logs = glob.glob(osp.join(work_dir, '*', '*.json'))
    assert len(logs) == 1
    with open(logs[0]) as f:
        return json.loads(f.readline())


@pytest.fixture
def fast_lpips_vgg(monkeypatch):
    """Random VGG16 for LPIPS without building (and initialising) its
    138M-parameter classifier; the features are torchvision's."""
    import types

    import lpips.pretrained_networks as pn
    from torchvision.models.vgg import cfgs, make_layers
    monkeypatch.setattr(
        pn.tv, 'vgg16',
        lambda *args, **kwargs: types.SimpleNamespace(
            features=make_layers(cfgs['D'])))


def test_realsr_test_loop_end_to_end(data, tmp_path, fast_lpips_vgg):
    """MultiTestLoop over the RealSR-Canon and NTIRE2020 test sets with all
    metrics (random metric weights), as the base config defines them."""
    base = osp.join(BASES, 'realsr_df2k_ost.py')
    cfg_path = tmp_path / 'realsr_test.py'
    cfg_path.write_text(f'''
_base_ = [{RUNTIME!r}, {base!r}]
model = {_tiny_sr_model()!r}
test_dataloader = _base_.test_dataloader[:2]
test_dataloader[0]['dataset']['data_root'] = {data + '/RealSR'!r}
test_dataloader[1]['dataset']['data_root'] = {data + '/NTIRE2020-Track1'!r}
for _dl in test_dataloader:
    _dl['num_workers'] = 0
    _dl['dataset']['indices'] = 1
del _dl
test_evaluator = _base_.test_evaluator[:2]
visualizer = dict(vis_backends=[dict(type='LocalVisBackend')])
log_level = 'WARNING'
''')
    cfg = Config.fromfile(str(cfg_path))
    evaluators = copy.deepcopy(cfg.test_evaluator)
    _random_metric_weights(evaluators)
    cfg.test_evaluator = evaluators
    cfg.dump(str(tmp_path / 'realsr_test_random.py'))
    metrics = _run_test(
        str(tmp_path / 'realsr_test_random.py'), str(tmp_path / 'work'))
    for prefix in ('RealSR-Canon', 'NTIRE2020-T1'):
        for key in ('PSNR', 'SSIM', 'LPIPS', 'DISTS', 'NIQE'):
            assert np.isfinite(metrics[f'{prefix}/{key}'])
        assert metrics[f'{prefix}/LPIPS'] > 0


@pytest.mark.parametrize('evaluator', [
    'lr_only_test_evaluator', 'lr_only_no_metric_evaluator'
])
def test_realsr_lr_only_saves_results(data, tmp_path, evaluator):
    """The data_preparation.md recipe: LR-only test set, GT-free NIQE or no metric, one
    saved SR image per input."""
    base = osp.join(BASES, 'realsr_df2k_ost.py')
    cfg_path = tmp_path / 'lr_only.py'
    cfg_path.write_text(f'''
_base_ = [{RUNTIME!r}, {base!r}]
model = {_tiny_sr_model()!r}
train_dataloader = None  # a test-only config (no train_cfg / optim_wrapper)
test_dataloader = [
    dict(_base_.lr_only_test_dataloader,
         num_workers=0,
         dataset=dict(_base_.lr_only_test_dataloader.dataset,
                      data_root={data + '/RealSR_LR'!r})),
]
test_evaluator = [_base_.{evaluator}]
visualizer = dict(fn_key='img_path', img_keys=['pred_img'],
                  vis_backends=[dict(type='LocalVisBackend')])
custom_hooks = [dict(type='BasicVisualizationHook', interval=1)]
log_level = 'WARNING'
''')
    work = str(tmp_path / 'work')
    metrics = _run_test(str(cfg_path), work)
    if evaluator == 'lr_only_test_evaluator':
        assert np.isfinite(metrics['RealLR/NIQE'])
    else:
        assert metrics['RealLR/ImageCount'] == 3
    saved = sorted(
        glob.glob(osp.join(work, '*', 'vis_data', 'vis_image', '*.png')))
    assert [osp.basename(p).rsplit('_', 1)[0] for p in saved] == sorted(NAMES)
    assert cv2.imread(saved[0]).shape == (96, 96, 3)  # x4 of the 24x24 input


# ---------------------------------------------------------------------------
# df2k_bicubic.py (+ _x2)
# ---------------------------------------------------------------------------
@pytest.mark.parametrize('base,scale', [('df2k_bicubic.py', 4),
                                        ('df2k_bicubic_x2.py', 2)])
def test_df2k_train(data, base, scale):
    cfg = load(base)
    ds = build(cfg.train_dataloader.dataset, f'{data}/DF2K')
    assert len(ds) == 3
    np.random.seed(0)
    for idx in range(3):
        assert chw(ds[idx]) == ((3, 256 // scale, 256 // scale), (3, 256,
                                                                  256))
    types = [t['type'] for t in cfg.train_pipeline]
    assert {'Flip', 'RandomTransposeHW'} <= set(types)


@pytest.mark.parametrize('base,scale', [('df2k_bicubic.py', 4),
                                        ('df2k_bicubic_x2.py', 2)])
def test_df2k_benchmarks(data, base, scale):
    cfg = load(base)
    names = [dl.dataset.metainfo.dataset_type for dl in cfg.test_dataloader]
    assert names == ['set14', 'urban100', 'manga109', 'general100', 'div2k100']
    for dl in cfg.test_dataloader:
        root = f'{data}/benchmark/' + osp.basename(dl.dataset.data_root)
        ds = build(dl.dataset, root)
        lq = (70 // scale, 66 // scale)
        # ModCrop trims the 70x66 GT to a multiple of the scale
        assert chw(ds[0]) == ((3, ) + lq, (3, lq[0] * scale, lq[1] * scale))
    prefixes = [ev.metrics[0].prefix for ev in cfg.test_evaluator]
    assert len(set(prefixes)) == 5
    lpips = [ev.metrics[2] for ev in cfg.test_evaluator]
    assert all(m.type == 'LPIPS' and m.net == 'alex'
               and m.gt_crop_multiple == scale for m in lpips)
    assert [ev.metrics[0].prefix for ev in cfg.val_evaluator
            ] == ['Urban100', 'DIV2K100']
    infer = build(
        dict(cfg.test_dataloader[0].dataset, pipeline=cfg.inference_pipeline),
        f'{data}/benchmark/Set14')
    assert chw(infer[0]) == ((3, 70 // scale, 66 // scale), None)
