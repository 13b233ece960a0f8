"""LaMa inpainting losses, pix2pixHD discriminator and ResNet-PL (random weights)."""
import copy

import pytest
import torch
import torch.nn.functional as F

from diffir_mm.models.discriminators import NLayerPatchDiscriminator
from diffir_mm.models.losses import (DiscFeatureMatchingLoss, MaskedL1Loss, NonSaturatingR1Loss,
                                     ResNetPLLoss)
from diffir_mm.models.losses.resnet_pl import ADE20kResNet50Dilated


def _mask(b=2, h=32, w=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(b, 1, h, w, generator=g) > 0.6).float()


def test_masked_l1_official_weights_only_known_pixels():
    g = torch.Generator().manual_seed(0)
    pred, gt = torch.rand(2, 3, 8, 8, generator=g), torch.rand(2, 3, 8, 8, generator=g)
    mask = _mask(2, 8, 8)
    loss = MaskedL1Loss()(pred, gt, mask)
    known = (1 - mask).expand_as(pred).bool()
    expected = 10 * (pred - gt).abs()[known].sum() / pred.numel()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    # the hole does not matter with weight_missing 0, it does with another weight
    pred2 = torch.where(mask.bool().expand_as(pred), torch.zeros_like(pred), pred)
    assert MaskedL1Loss()(pred2, gt, mask).item() == pytest.approx(loss.item(), rel=1e-6)
    assert MaskedL1Loss(10, 1)(pred2, gt, mask) != MaskedL1Loss(10, 1)(pred, gt, mask)
    pred.requires_grad_(True)
    MaskedL1Loss()(pred, gt, mask).backward()
    assert (pred.grad[~known] == 0).all() and (pred.grad[known] != 0).all()


@pytest.fixture()
def disc():
    torch.manual_seed(0)
    return NLayerPatchDiscriminator()


def test_discriminator_layout_and_features(disc):
    x = torch.rand(2, 3, 256, 256)
    logits, feats = disc.forward_features(x)
    assert logits.shape == (2, 1, 19, 19)  # pix2pixHD padding 2
    assert [f.shape[1] for f in feats] == [64, 128, 256, 512, 512]
    assert torch.equal(disc(x), logits)
    keys = disc.state_dict().keys()
    assert {'model0.0.weight', 'model1.1.running_mean', 'model4.1.weight', 'model5.0.bias'} <= keys
    assert 'model6.0.weight' not in keys
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in disc.modules()) == 4


def test_adversarial_loss_matches_direct_formulas(disc):
    loss = NonSaturatingR1Loss()  # official: weight 10, gp_coef 0.001, mask_as_fake_target
    real = torch.rand(2, 3, 64, 64)
    fake = torch.rand(2, 3, 64, 64, requires_grad=True)
    mask = _mask(2, 64, 64)
    fake_logits = disc(fake)
    g_loss = loss.generator_loss(fake_logits)
    assert g_loss.item() == pytest.approx(10 * F.softplus(-fake_logits).mean().item(), rel=1e-5)
    g_loss.backward()
    assert fake.grad.abs().sum() > 0

    real_logits, fake_logits = disc(real), disc(fake.detach())
    d_loss, parts = loss.discriminator_loss(disc, real, real_logits, fake_logits, mask)
    small = F.interpolate(mask, size=fake_logits.shape[-2:], mode='nearest')
    fake_term = (small * F.softplus(fake_logits) + (1 - small) * F.softplus(-fake_logits)).mean()
    real_req = real.clone().requires_grad_(True)
    grad = torch.autograd.grad(disc(real_req).sum(), real_req)[0]
    r1 = grad.flatten(1).norm(dim=1).pow(2).mean() * 0.001
    expected = F.softplus(-real_logits).mean() + fake_term + r1
    assert d_loss.item() == pytest.approx(expected.item(), rel=1e-4)
    assert parts['r1'].item() == pytest.approx(r1.item(), rel=1e-4)
    assert parts['fake'].item() == pytest.approx(fake_term.item(), rel=1e-5)
    disc.zero_grad()
    d_loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in disc.parameters())
    # without mask_as_fake_target the whole fake image is fake
    plain, _ = NonSaturatingR1Loss(mask_as_fake_target=False).discriminator_loss(
        disc, real, real_logits.detach(), fake_logits.detach(), mask)
    only_fake = F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean() + r1
    assert plain.item() == pytest.approx(only_fake.item(), rel=1e-4)


def test_feature_matching_mean_over_layers(disc):
    fake = torch.rand(2, 3, 64, 64, requires_grad=True)
    _, fake_feats = disc.forward_features(fake)
    _, real_feats = disc.forward_features(torch.rand(2, 3, 64, 64))
    loss = DiscFeatureMatchingLoss()(fake_feats, real_feats)
    expected = sum(((f - r) ** 2).mean() for f, r in zip(fake_feats, real_feats)) / 5 * 100
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    loss.backward()
    assert fake.grad.abs().sum() > 0
    with pytest.raises(ValueError, match='equally long'):
        DiscFeatureMatchingLoss()(fake_feats, real_feats[:2])


def test_ade20k_encoder_architecture():
    enc = ADE20kResNet50Dilated().eval()
    with torch.no_grad():
        feats = enc(torch.rand(1, 3, 64, 64))
    assert [tuple(f.shape[1:]) for f in feats] == [(256, 16, 16), (512, 8, 8), (1024, 8, 8),
                                                   (2048, 8, 8)]
    assert enc.layer3[0].conv2.dilation == (1, 1) and enc.layer3[1].conv2.dilation == (2, 2)
    assert enc.layer4[0].conv2.dilation == (2, 2) and enc.layer4[2].conv2.dilation == (4, 4)
    assert enc.conv1.stride == (2, 2) and enc.conv3.out_channels == 128
    # torchvision's ResNet-50 minus fc and its 7x7 stem, plus the deep stem, whose 128-wide
    # output widens the first block's conv1 and downsample by 64 input channels
    from torchvision.models import resnet50
    tv = resnet50()
    body = sum(p.numel() for n, p in tv.named_parameters() if n.startswith('layer'))
    stem = (3 * 64 + 64 * 64 + 64 * 128) * 9 + 2 * (64 + 64 + 128)
    wider = 64 * 64 + 64 * 256
    assert sum(p.numel() for p in enc.parameters()) == body + stem + wider


@pytest.fixture(scope='module')
def encoder_file(tmp_path_factory):
    """A random encoder saved like a LaMa Lightning checkpoint (prefixed keys, old BN keys)."""
    torch.manual_seed(1)
    enc = ADE20kResNet50Dilated()
    for m in enc.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    state = {f'loss_resnet_pl.impl.{k}': v for k, v in enc.state_dict().items()
             if not k.endswith('num_batches_tracked')}
    root = tmp_path_factory.mktemp('weights')
    path = root / 'ade20k' / 'ade20k-resnet50dilated-ppm_deepsup' / 'encoder_epoch_20.pth'
    path.parent.mkdir(parents=True)
    torch.save({'state_dict': state}, path)
    return str(root), str(path), enc


@pytest.mark.parametrize('norm_eval', [False, True])
def test_resnet_pl_value_gradients_and_weights(encoder_file, norm_eval):
    root, path, reference = encoder_file
    reference = copy.deepcopy(reference)
    loss = ResNetPLLoss(weights_path=root, norm_eval=norm_eval)  # LaMa's weights folder
    loss.init_weights()
    for a, b in zip(loss.encoder.state_dict().values(), reference.state_dict().values()):
        assert torch.equal(a, b) or a.dtype == torch.long
    loss.train()
    # default (the official runs): Lightning's model.train() reaches the encoder, whose BN then
    # normalises with batch statistics; norm_eval keeps the checkpoint's statistics
    assert loss.encoder.training is not norm_eval
    pred = torch.rand(2, 3, 64, 64, requires_grad=True)
    gt = torch.rand(2, 3, 64, 64)
    value = loss(pred, gt)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    reference.train(not norm_eval)
    with torch.no_grad():  # two calls, as the official loss: each batch its own statistics
        fp, ft = reference((pred - mean) / std), reference((gt - mean) / std)
    expected = 30 * sum(((a - b) ** 2).mean() for a, b in zip(fp, ft))
    assert value.item() == pytest.approx(expected.item(), rel=1e-4)
    if not norm_eval:  # the two modes give different values
        reference.eval()
        with torch.no_grad():
            fp, ft = reference((pred - mean) / std), reference((gt - mean) / std)
        running = 30 * sum(((a - b) ** 2).mean() for a, b in zip(fp, ft))
        assert running.item() != pytest.approx(value.item(), rel=1e-2)
    value.backward()
    assert pred.grad.abs().sum() > 0
    assert all(p.grad is None for p in loss.parameters())
    assert loss(gt, gt).item() == 0
    # the file itself works too
    same = ResNetPLLoss(weights_path=path, norm_eval=norm_eval).train()
    assert same(pred.detach(), gt).item() == pytest.approx(value.item(), rel=1e-5)
    loss.eval()  # outside training both modes use the running statistics
    assert not loss.encoder.training


def test_resnet_pl_default_is_the_official_batch_statistics_mode():
    loss = ResNetPLLoss(allow_random_weights=True)
    assert not loss.norm_eval and not loss.encoder.training  # built in eval mode
    assert loss.train().encoder.training


def test_resnet_pl_bad_weights(tmp_path):
    with pytest.raises(ValueError, match='needs weights_path'):
        ResNetPLLoss()
    with pytest.raises(FileNotFoundError, match='encoder weights not found: .*encoder_epoch_20'):
        ResNetPLLoss(weights_path=str(tmp_path)).init_weights()
    other = tmp_path / 'other.pth'
    torch.save({'conv1.weight': torch.zeros(64, 3, 3, 3)}, other)
    with pytest.raises(KeyError, match='not an ADE20k ResNet50-dilated encoder'):
        ResNetPLLoss(weights_path=str(other)).init_weights()


def test_losses_and_discriminator_are_registered():
    from mmagic.registry import MODELS

    import diffir_mm.registration  # noqa: F401

    for cfg in (dict(type='MaskedL1Loss'), dict(type='NonSaturatingR1Loss'),
                dict(type='DiscFeatureMatchingLoss'), dict(type='NLayerPatchDiscriminator'),
                dict(type='ResNetPLLoss', allow_random_weights=True)):
        assert type(MODELS.build(cfg)).__name__ == cfg['type']
