"""VGGPerceptualLoss: local weights only, official layer taps, clear errors."""
import pytest
import torch
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
