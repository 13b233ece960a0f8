"""Transforms of the official Real-ESRGAN second-order degradation."""
import cv2
import numpy as np
import pytest

pytest.importorskip('mmagic.datasets')

from mmagic.registry import TRANSFORMS  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402

from diffir_mm.datasets.transforms import (  # noqa: E402
    PadToMinSize, Quantize, RealESRGANRandomBlur, RealESRGANRandomNoise,
    RealESRGANRandomResize)
from diffir_mm.datasets.transforms import \
    real_esrgan_degradations as deg  # noqa: E402

KERNELS = [
    'iso', 'aniso', 'generalized_iso', 'generalized_aniso', 'plateau_iso',
    'plateau_aniso', 'sinc'
]
PROBS = [0.405, 0.225, 0.108, 0.027, 0.108, 0.027, 0.1]


@pytest.fixture(autouse=True)
def _seed():
    np.random.seed(0)


def test_registered():
    for cls in (RealESRGANRandomBlur, RealESRGANRandomResize,
                RealESRGANRandomNoise, Quantize, PadToMinSize):
        assert TRANSFORMS.get(cls.__name__) is cls


def test_blur_float_output_and_prob():
    img = np.random.randint(0, 256, (40, 36, 3), dtype=np.uint8)
    blur = RealESRGANRandomBlur(
        dict(kernel_list=KERNELS, kernel_prob=PROBS, sigma_x=[0.2, 3]),
        keys=['img'])
    out = blur(dict(img=img.copy()))['img']
    assert out.dtype == np.float32 and out.shape == img.shape
    assert not np.array_equal(out, img)
    # a constant image stays constant (normalised kernel, reflect border)
    flat = np.full((30, 30, 3), 77, np.uint8)
    assert np.allclose(blur(dict(img=flat))['img'], 77, atol=1e-3)
    # lists of images share one kernel
    outs = blur(dict(img=[img, img.copy()]))['img']
    assert len(outs) == 2 and np.array_equal(outs[0], outs[1])
    # prob=0: untouched
    never = RealESRGANRandomBlur(
        dict(kernel_list=['iso'], kernel_prob=[1], prob=0), keys=['img'])
    assert never(dict(img=img))['img'] is img


def test_blur_samples_like_basicsr(monkeypatch):
    """Full shape-parameter ranges go to ``random_mixed_kernels`` (mmagic's
    ``RandomBlur`` collapses them to one drawn value), and the sinc cut-off
    range depends on the kernel size as in BasicSR."""
    calls = []

    def fake(kernel_list, kernel_prob, size, sx, sy, rot, bg, bp, omega,
             noise):
        calls.append(dict(size=size, bg=bg, bp=bp, omega=omega, sx=sx))
        return np.ones((size, size)) / size**2

    monkeypatch.setattr(deg.blur_kernels, 'random_mixed_kernels', fake)
    blur = RealESRGANRandomBlur(
        dict(kernel_list=KERNELS, kernel_prob=PROBS, sigma_x=[0.2, 3]),
        keys=['img'])
    for _ in range(40):
        blur(dict(img=np.zeros((24, 24, 3), np.float32)))
    assert {c['size'] for c in calls} <= set(range(7, 22, 2))
    assert all(c['bg'] == [0.5, 4] and c['bp'] == [1, 2] for c in calls)
    for c in calls:
        low = np.pi / 3 if c['size'] < 13 else np.pi / 5
        assert c['omega'] == [low, np.pi]
    assert {c['size'] < 13 for c in calls} == {True, False}


def test_blur_kernel_is_normalised():
    blur = RealESRGANRandomBlur(
        dict(kernel_list=KERNELS, kernel_prob=PROBS, sigma_x=[0.2, 3]))
    for _ in range(20):
        kernel = blur.get_kernel()
        assert kernel.shape[0] % 2 == 1 and 7 <= kernel.shape[0] <= 21
        assert kernel.sum() == pytest.approx(1, abs=1e-5)
    with pytest.raises(ValueError, match='odd'):
        RealESRGANRandomBlur(
            dict(kernel_list=['iso'], kernel_prob=[1], kernel_size=[8]))


def test_resize_input_reference():
    img = np.zeros((64, 48, 3), np.float32)
    keep = RealESRGANRandomResize(
        dict(resize_mode_prob=[0, 0, 1], resize_scale=[0.15, 1.5]),
        keys=['img'])
    assert keep(dict(img=img))['img'].shape == (64, 48, 3)
    down = RealESRGANRandomResize(
        dict(resize_mode_prob=[0, 1, 0], resize_scale=[0.15, 1.5]),
        keys=['img'])
    np.random.seed(5)
    factor, _ = down.draw()  # official: U(0.15, 1) for 'down'
    np.random.seed(5)
    out = down(dict(img=img))['img']
    assert 0.15 <= factor <= 1
    assert out.shape == (int(64 * factor), int(48 * factor), 3)


def test_resize_target_reference():
    gt = np.zeros((64, 48, 3), np.uint8)
    img = np.zeros((40, 40, 3), np.float32)  # current size is irrelevant
    final = RealESRGANRandomResize(dict(reference='target'), keys=['img'])
    assert final(dict(img=img, gt=gt, scale=4))['img'].shape == (16, 12, 3)
    second = RealESRGANRandomResize(
        dict(
            reference='target',
            resize_mode_prob=[1, 0, 0],
            resize_scale=[0.3, 1.5]),
        keys=['img'])
    np.random.seed(3)
    factor, _ = second.draw()
    np.random.seed(3)
    out = second(dict(img=img, gt=gt, scale=4))['img']
    assert 1 <= factor <= 1.5
    assert out.shape == (int(64 / 4 * factor), int(48 / 4 * factor), 3)
    with pytest.raises(KeyError, match='SetValues'):
        final(dict(img=img, gt=gt))
    with pytest.raises(ValueError, match='reference'):
        RealESRGANRandomResize(dict(reference='gt'))


def test_gaussian_noise():
    img = np.full((64, 64, 3), 128, np.uint8)
    noise = RealESRGANRandomNoise(
        dict(
            noise_type=['gaussian'],
            noise_prob=[1],
            gaussian_sigma=[10, 10],
            gray_noise_prob=0),
        keys=['img'])
    out = noise(dict(img=img))['img']
    assert out.dtype == np.float32
    assert (out - 128).std() == pytest.approx(10, rel=0.1)
    assert not np.allclose(out[..., 0], out[..., 1])
    gray = RealESRGANRandomNoise(
        dict(
            noise_type=['gaussian'],
            noise_prob=[1],
            gaussian_sigma=[10, 10],
            gray_noise_prob=1),
        keys=['img'])
    out = gray(dict(img=img))['img']
    assert np.allclose(out[..., 0], out[..., 1])
    dark = gray(dict(img=np.zeros((16, 16, 3), np.uint8)))['img']
    assert dark.min() >= 0  # clipped like the official clip=True


def test_poisson_noise_matches_official_strength():
    """BasicSR computes Poisson noise on [0, 1] images; for a ramp with all
    256 grey levels its std is sqrt(255 / 256 * mean(v)) ~ 11.3 (0-255
    units). mmagic's RandomNoise is ~16x weaker."""
    ramp = np.tile(np.arange(256, dtype=np.uint8), (64, 1))
    img = np.repeat(ramp[..., None], 3, axis=2)
    params = dict(
        noise_type=['poisson'],
        noise_prob=[1],
        poisson_scale=[1, 1],
        gray_noise_prob=0,
        clip=False)
    out = RealESRGANRandomNoise(params, keys=['img'])(dict(img=img))['img']
    expected = np.sqrt(255 / 256 * 127.5)
    assert (out - img).std() == pytest.approx(expected, rel=0.05)
    mm = TRANSFORMS.build(
        dict(
            type='RandomNoise',
            params=dict(
                noise_type=['poisson'],
                noise_prob=[1],
                poisson_scale=[1, 1],
                poisson_gray_noise_prob=0),
            keys=['img']))
    mm_out = mm(dict(img=img.astype(np.float32)))['img']
    assert (mm_out - img).std() < expected / 8


def test_quantize():
    img = np.array([[[-3.2, 0.4, 0.6], [254.6, 300.0, 12.5]]], np.float32)
    out = Quantize(keys=['img'])(dict(img=img))['img']
    assert out.dtype == np.uint8
    assert out.tolist() == [[[0, 0, 1], [255, 255, 12]]]
    out = Quantize(keys=['img'], to_uint8=False)(dict(img=img))['img']
    assert out.dtype == np.float32


def test_pad_to_min_size():
    img = np.random.randint(0, 256, (30, 20, 3), dtype=np.uint8)
    out = PadToMinSize(keys=['gt'], min_size=40)(dict(gt=img))['gt']
    assert out.shape == (40, 40, 3)
    ref = cv2.copyMakeBorder(img, 0, 10, 0, 20, cv2.BORDER_REFLECT_101)
    assert np.array_equal(out, ref)
    big = np.zeros((50, 60, 3), np.uint8)
    assert PadToMinSize(keys=['gt'], min_size=40)(dict(gt=big))['gt'] is big


def test_final_stage_random_order_builds_in_mmagic_scope():
    """mmcv's RandomChoice holds our transforms (DegradationsWithShuffle
    cannot)."""
    init_default_scope('mmagic')
    resize = dict(
        type='RealESRGANRandomResize',
        params=dict(reference='target'),
        keys=['img'])
    jpeg = dict(
        type='RandomJPEGCompression',
        params=dict(quality=[30, 95]),
        keys=['img'],
        bgr2rgb=True)
    choice = TRANSFORMS.build(
        dict(
            type='RandomChoice',
            transforms=[[resize, jpeg], [jpeg, resize]],
            prob=[0.5, 0.5]))
    gt = np.random.randint(0, 256, (64, 64, 3), dtype=np.uint8)
    for _ in range(4):
        out = choice(dict(img=gt.astype(np.float32), gt=gt, scale=4))
        assert out['img'].shape == (16, 16, 3)
