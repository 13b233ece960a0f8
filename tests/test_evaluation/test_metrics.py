"""LPIPS / DISTS / NoRefNIQE / ImageCount metrics (random or locally saved
weights only: nothing is downloaded)."""
import warnings

import numpy as np
import pytest
import torch

from helpers import sample_image

pytest.importorskip('mmagic.evaluation')

from mmagic.registry import METRICS  # noqa: E402

from diffir_mm.evaluation import (DISTS, LPIPS, ImageCount,  # noqa: E402
                                  NoRefNIQE)
from diffir_mm.evaluation.metrics.dists_metric import DISTSNet  # noqa: E402


def _bgr_chw(rgb_hwc: np.ndarray) -> torch.Tensor:
    """HWC RGB uint8 -> CHW BGR float tensor (what mmagic passes)."""
    return torch.from_numpy(
        np.ascontiguousarray(rgb_hwc[..., ::-1].transpose(2, 0, 1))).float()


@pytest.fixture(scope='module')
def images():
    """A 48x48 photo, a noisy copy and a different photo (BGR CHW 0-255)."""
    rng = np.random.default_rng(0)
    img = sample_image('astronaut', 48)
    noisy = np.clip(img + rng.normal(0, 25, img.shape), 0, 255).astype(
        np.uint8)
    other = sample_image('coffee', 48)
    return _bgr_chw(img), _bgr_chw(noisy), _bgr_chw(other)


def _random(cls, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        return cls(allow_random_weights=True, device='cpu', **kwargs)


@pytest.fixture(scope='module')
def lpips_alex():
    return _random(LPIPS, net='alex')


@pytest.fixture(scope='module')
def dists():
    return _random(DISTS)


def test_registered_names():
    assert METRICS.get('LPIPS') is LPIPS
    assert METRICS.get('DISTS') is DISTS
    assert METRICS.get('NoRefNIQE') is NoRefNIQE
    assert METRICS.get('ImageCount') is ImageCount
    metric = METRICS.build(
        dict(
            type='LPIPS',
            net='alex',
            allow_random_weights=True,
            device='cpu',
            prefix='Set14'))
    assert isinstance(metric, LPIPS) and metric.prefix == 'Set14'


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


@pytest.mark.parametrize('net', ['vgg', 'alex'])
def test_lpips_identical_zero_different_positive(net, images, lpips_alex,
                                                 fast_lpips_vgg):
    metric = lpips_alex if net == 'alex' else _random(LPIPS, net=net)
    img, noisy, other = images
    assert metric.process_image(img, img.clone()) == pytest.approx(0, abs=1e-6)
    d_noisy = metric.process_image(img, noisy)
    d_other = metric.process_image(img, other)
    assert d_noisy > 0 and d_other > 0


def test_dists_identical_zero_different_positive_symmetric(images, dists):
    img, noisy, other = images
    assert dists.process_image(img, img.clone()) == pytest.approx(0, abs=1e-5)
    d = dists.process_image(img, other)
    assert d > 0
    assert dists.process_image(other, img) == pytest.approx(d, rel=1e-4)
    assert dists.process_image(img, noisy) > 0


def test_weights_are_required_without_allow_random():
    with pytest.raises(ValueError, match='backbone_path'):
        LPIPS(net='vgg')
    with pytest.raises(ValueError, match='backbone_path and weights_path'):
        DISTS()
    with pytest.raises(FileNotFoundError, match='never downloads'):
        LPIPS(net='alex', backbone_path='/nonexistent/alexnet.pth')
    with pytest.raises(ValueError, match='net must be one of'):
        LPIPS(net='resnet', allow_random_weights=True)


def test_random_weights_warn():
    with pytest.warns(UserWarning, match='RANDOM'):
        LPIPS(net='alex', allow_random_weights=True, device='cpu')


def test_lpips_loads_local_torchvision_backbone(tmp_path, images):
    from torchvision.models import alexnet
    torch.manual_seed(1)
    backbone = alexnet(weights=None)
    path = tmp_path / 'alexnet.pth'
    features = {k: v for k, v in backbone.state_dict().items()
                if k.startswith('features.')}  # keep the file small
    torch.save({'state_dict': features}, path)  # wrapped state dict
    metric = LPIPS(net='alex', backbone_path=str(path), device='cpu')
    first_conv = metric.net.net.slice1[0].weight
    assert torch.equal(first_conv, backbone.features[0].weight)
    assert torch.equal(
        getattr(metric.net.net.slice5, '10').bias, backbone.features[10].bias)
    img, noisy, _ = images
    assert metric.process_image(img, noisy) > 0


def test_dists_loads_local_weights(tmp_path, images):
    from scipy.io import savemat
    from torchvision.models.vgg import cfgs, make_layers
    torch.manual_seed(2)
    features = make_layers(cfgs['D'])
    vgg_path = tmp_path / 'vgg16.pth'
    torch.save({f'features.{k}': v
                for k, v in features.state_dict().items()}, vgg_path)
    alpha, beta = torch.rand(1, 1475, 1, 1), torch.rand(1, 1475, 1, 1)
    pt_path = tmp_path / 'weights.pt'
    torch.save({'alpha': alpha, 'beta': beta}, pt_path)
    mat_path = tmp_path / 'alpha_beta.mat'
    savemat(mat_path, {'alpha': alpha.numpy().ravel(),
                       'beta': beta.numpy().ravel()})
    metric = DISTS(
        backbone_path=str(vgg_path), weights_path=str(pt_path), device='cpu')
    assert torch.equal(
        getattr(metric.net.stage3, '10').weight, features[10].weight)
    assert torch.equal(metric.net.alpha, alpha)
    net_mat = DISTSNet(str(vgg_path), str(mat_path))
    assert torch.allclose(net_mat.beta, beta)
    img, noisy, _ = images
    gt, pred = metric.prepare_pair(img, noisy)
    assert net_mat(gt, pred).item() == pytest.approx(
        metric.process_image(img, noisy), rel=1e-5)


def test_bgr_input_is_converted_to_rgb(images, lpips_alex):
    img, _, other = images
    # process_image gets BGR and must feed RGB in [-1, 1] to lpips
    rgb = img.flip(0)[None] / 255 * 2 - 1
    rgb_other = other.flip(0)[None] / 255 * 2 - 1
    with torch.no_grad():
        expected = lpips_alex.net(rgb_other, rgb).item()
    assert lpips_alex.process_image(img, other) == pytest.approx(
        expected, rel=1e-5)


def test_process_batch_prefix_and_evaluate(images, lpips_alex, dists):
    """Data samples as mmagic passes them: dicts with CHW tensors."""
    img, noisy, other = images
    samples = [
        dict(gt_img=img, output=dict(pred_img=noisy)),
        dict(gt_img=img, output=dict(pred_img=other)),
    ]
    for metric in (lpips_alex, dists):
        metric.results.clear()
        metric.prefix = 'Set5'
        metric.process(None, samples)
        assert len(metric.results) == 2
        metric.size = 2
        result = metric.evaluate()
        key = f'Set5/{metric.metric}'
        assert set(result) == {key}
        expected = np.mean([
            metric.process_image(img, noisy),
            metric.process_image(img, other)
        ])
        assert result[key] == pytest.approx(expected, rel=1e-5)


def test_stacked_frames(images, lpips_alex):
    img, noisy, _ = images
    lpips_alex.results.clear()
    lpips_alex.process(None, [
        dict(
            gt_img=torch.stack([img, img]),
            output=dict(pred_img=torch.stack([img, noisy])))
    ])
    expected = lpips_alex.process_image(img, noisy) / 2
    assert lpips_alex.results[0]['LPIPS'] == pytest.approx(expected, rel=1e-5)


@pytest.fixture
def alex_with(lpips_alex):
    """The shared LPIPS-Alex metric with temporarily changed attributes."""
    saved = (lpips_alex.crop_border, lpips_alex.gt_crop_multiple)

    def configure(crop_border=0, gt_crop_multiple=None):
        lpips_alex.crop_border = crop_border
        lpips_alex.gt_crop_multiple = gt_crop_multiple
        return lpips_alex

    yield configure
    lpips_alex.crop_border, lpips_alex.gt_crop_multiple = saved


def test_crop_border(images, alex_with):
    img, _, other = images
    pred = img.clone()
    pred[:, :4] = other[:, :4]  # differ only in a 4-pixel top band
    assert alex_with(crop_border=0).process_image(img, pred) > 0
    assert alex_with(crop_border=4).process_image(img, pred) == pytest.approx(
        0, abs=1e-6)
    with pytest.raises(ValueError, match='crop_border'):
        alex_with(crop_border=40).process_image(img, img)
    with pytest.raises(ValueError, match='crop_border'):
        LPIPS(net='alex', crop_border=-1, allow_random_weights=True)


def test_gt_crop_multiple(images, alex_with):
    img, noisy, _ = images
    gt = torch.nn.functional.pad(img[None], (0, 3, 0, 2),
                                 mode='replicate')[0]  # 50x51
    expected = alex_with().process_image(img, noisy)
    assert alex_with(gt_crop_multiple=4).process_image(
        gt, noisy) == pytest.approx(expected, rel=1e-6)
    with pytest.raises(ValueError, match='differ'):
        alex_with().process_image(gt, noisy)


def test_no_ref_niqe_without_gt():
    img = _bgr_chw(sample_image('chelsea', 96))
    metric = NoRefNIQE(prefix='RealLR')
    metric.process(None, [dict(output=dict(pred_img=img))])  # no gt_img
    metric.size = 1
    result = metric.evaluate()
    assert set(result) == {'RealLR/NIQE'}
    assert np.isfinite(result['RealLR/NIQE'])
    # mmagic's own NIQE needs a GT
    mm_niqe = METRICS.build(dict(type='NIQE', input_order='CHW'))
    with pytest.raises(KeyError):
        mm_niqe.process(None, [dict(output=dict(pred_img=img))])


def test_image_count():
    metric = ImageCount(prefix='RealLR')
    metric.process(None, [dict(output=dict(pred_img=torch.zeros(3, 4, 4)))] *
                   3)
    metric.size = 3
    assert metric.evaluate() == {'RealLR/ImageCount': 3}
