"""PairedFID: LaMa-protocol FID between predictions and GTs (random Inception weights)."""
import numpy as np
import pytest
import torch

from diffir_mm.evaluation.metrics.fid_metric import PairedFID


@pytest.fixture(scope='module')
def weights_file(tmp_path_factory):
    """A random FID Inception saved with pytorch-fid's (torchvision) key names."""
    from mmagic.evaluation.functional.fid_inception import fid_inception_v3

    torch.manual_seed(0)
    net = fid_inception_v3(load_ckpt=False)
    path = tmp_path_factory.mktemp('fid') / 'pt_inception-2015-12-05-6726825d.pth'
    torch.save(net.state_dict(), path)
    return str(path)


def _samples(n=4, size=32, seed=0, noise=0.0):
    rng = np.random.RandomState(seed)
    out = []
    for _ in range(n):
        gt = rng.randint(0, 256, (3, size, size)).astype(np.float32)
        pred = np.clip(gt + noise * rng.randn(*gt.shape), 0, 255).astype(np.float32)
        out.append(dict(gt_img=torch.from_numpy(gt),
                        output=dict(pred_img=torch.from_numpy(pred))))
    return out


def _frechet(a, b):
    """Frechet distance of two small feature sets via their centred products (n << 2048):
    tr sqrt(S_a S_b) is the sum of the singular values of A_c B_c^T / (n - 1)."""
    n = len(a)
    ac, bc = a - a.mean(0), b - b.mean(0)
    cross = np.linalg.svd(ac @ bc.T / (n - 1), compute_uv=False).sum()
    diff = a.mean(0) - b.mean(0)
    return diff @ diff + ((ac ** 2).sum() + (bc ** 2).sum()) / (n - 1) - 2 * cross


def test_fid_value_against_direct_computation(weights_file):
    metric = PairedFID(inception_path=weights_file, device='cpu')
    samples = _samples(noise=60.0)
    metric.process(None, samples)
    fid = metric.compute_metrics(metric.results)['FID']
    # independent path: the same inputs (BGR 0-255 -> RGB [0, 1]) through the network directly
    rgb = lambda t: (t.flip(0) / 255.)[None]  # noqa: E731
    with torch.no_grad():
        feat = lambda t: metric.net(rgb(t))[0].flatten().double().numpy()  # noqa: E731
        pred = np.stack([feat(s['output']['pred_img']) for s in samples])
        gt = np.stack([feat(s['gt_img']) for s in samples])
    assert fid == pytest.approx(_frechet(pred, gt), rel=1e-3)
    assert fid > 0
    assert _frechet(gt, gt) == pytest.approx(0, abs=1e-6)


def test_fid_weights_load_from_torchvision_layout(weights_file):
    metric = PairedFID(inception_path=weights_file, device='cpu')
    source = torch.load(weights_file, weights_only=True)
    loaded = metric.net.state_dict()
    prefixes = {'Conv2d_1a_3x3': 'blocks.0.0', 'Conv2d_4a_3x3': 'blocks.1.1',
                'Mixed_5b': 'blocks.2.0', 'Mixed_6e': 'blocks.2.7', 'Mixed_7c': 'blocks.3.2'}
    for old, new in prefixes.items():
        keys = [k for k in source if k.startswith(old + '.')]
        assert keys
        for key in keys:
            assert torch.equal(loaded[new + key[len(old):]], source[key])
    assert len(loaded) == len([k for k in source if not k.startswith('fc.')])


def test_fid_bad_input(tmp_path):
    with pytest.raises(ValueError, match='needs inception_path'):
        PairedFID()
    with pytest.raises(FileNotFoundError, match='FID Inception weights not found'):
        PairedFID(inception_path=str(tmp_path / 'none.pth'))
    other = tmp_path / 'other.pth'
    torch.save({'Conv2d_1a_3x3.conv.weight': torch.zeros(32, 3, 3, 3)}, other)
    with pytest.raises(KeyError, match='not an FID Inception-v3 file'):
        PairedFID(inception_path=str(other))
    with pytest.warns(UserWarning, match='RANDOM Inception'):
        metric = PairedFID(allow_random_weights=True, device='cpu')
    metric.process(None, _samples(n=1))
    with pytest.raises(ValueError, match='at least 2 images'):
        metric.compute_metrics(metric.results)


def test_fid_is_registered():
    from mmagic.registry import METRICS

    import diffir_mm.registration  # noqa: F401

    with pytest.warns(UserWarning):
        metric = METRICS.build(dict(type='PairedFID', allow_random_weights=True))
    assert isinstance(metric, PairedFID)
