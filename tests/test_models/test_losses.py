"""VGGPerceptualLoss: local weights only, official layer taps, clear errors."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import vgg19

import diffir_mm.registration  # noqa: F401
from diffir_mm.models.losses import VGGPerceptualLoss


def test_loads_local_weights_and_computes(tmp_path):
    torch.manual_seed(0)
    ref = vgg19(weights=None)
    path = tmp_path / 'vgg19.pth'
    torch.save(ref.state_dict(), path)
    loss = VGGPerceptualLoss(vgg_path=str(path))
    loss.init_weights()
    assert torch.equal(loss.features[34].weight, ref.features[34].weight)
    x = torch.rand(1, 3, 32, 32)
    percep, style = loss(x, x)
    assert percep.item() == 0 and style is None
    percep, _ = loss(x, torch.rand(1, 3, 32, 32))
    assert percep.item() > 0
    # pre-ReLU taps of conv1_2 .. conv5_4, official weights
    assert loss._taps == {2: 'conv1_2', 7: 'conv2_2', 16: 'conv3_4', 25: 'conv4_4', 34: 'conv5_4'}


def test_missing_file_is_a_clear_error_at_training_start(tmp_path):
    loss = VGGPerceptualLoss(vgg_path=str(tmp_path / 'nope.pth'))  # building never reads it
    with pytest.raises(FileNotFoundError, match='vgg_path'):
        loss.init_weights()
    with pytest.raises(ValueError, match='vgg_path'):
        VGGPerceptualLoss()


def test_gradient_flows_to_prediction_only():
    loss = VGGPerceptualLoss(allow_random_weights=True, layer_weights={'conv2_2': 1.0},
                             style_weight=1.0)
    pred = torch.rand(1, 3, 16, 16, requires_grad=True)
    percep, style = loss(pred, torch.rand(1, 3, 16, 16))
    (percep + style).backward()
    assert pred.grad is not None and pred.grad.abs().sum() > 0
    assert all(p.grad is None for p in loss.parameters())


def _named_pre_relu_features(net, x):
    """Conv outputs of VGG19 named by block/position (``conv3_4``), read before any ReLU.

    Written independently of the loss: layers are walked by type, not by index, and every conv
    output is cloned before the (in-place) ReLU that follows it can overwrite it.
    """
    feats, block, conv = {}, 1, 0
    for layer in net.features:
        x = layer(x)
        if isinstance(layer, nn.Conv2d):
            conv += 1
            feats[f'conv{block}_{conv}'] = x.clone()
        elif isinstance(layer, nn.MaxPool2d):
            block, conv = block + 1, 0
    return feats


def test_loss_uses_pre_relu_features(tmp_path):
    """Loss value equals the L1 of pre-ReLU VGG19 features (official VGGFeatureExtractor).

    Post-ReLU features give a different value: negative activations would be clipped to 0.
    """
    torch.manual_seed(0)
    ref = vgg19(weights=None).eval()
    path = tmp_path / 'vgg19.pth'
    torch.save(ref.state_dict(), path)
    weights = {'conv1_2': 0.1, 'conv2_2': 0.1, 'conv3_4': 1.0, 'conv4_4': 1.0, 'conv5_4': 1.0}
    loss = VGGPerceptualLoss(vgg_path=str(path), layer_weights=weights, style_weight=1.0)
    pred, target = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    percep, style = loss(pred, target)

    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        fp = _named_pre_relu_features(ref, (pred - mean) / std)
        ft = _named_pre_relu_features(ref, (target - mean) / std)
    assert all((fp[k] < 0).any() for k in weights)  # pre-ReLU features do go negative

    def gram(f):
        n, c, h, w = f.shape
        f = f.reshape(n, c, h * w)
        return f @ f.transpose(1, 2) / (c * h * w)

    want_percep = sum(w * F.l1_loss(fp[k], ft[k]) for k, w in weights.items())
    want_style = sum(w * F.l1_loss(gram(fp[k]), gram(ft[k])) for k, w in weights.items())
    torch.testing.assert_close(percep, want_percep, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(style, want_style, rtol=1e-5, atol=1e-9)
