"""Unit tests of the DiffIR editors: train/val steps, phases, stage-1 loading, EMA, GAN."""
import copy

import pytest
import torch
import torch.nn.functional as F
from mmengine.optim import OptimWrapper, OptimWrapperDict

import diffir_mm.registration  # noqa: F401  (registers)
from diffir_mm.archs import CheckpointMismatchError
from diffir_mm.models.editors import DiffIRS2GAN
from mmagic.registry import MODELS
from mmagic.structures import DataSample
from mmengine.registry import init_default_scope

init_default_scope('mmagic')

TINY = dict(task='sr', scale=2, dim=8, num_blocks=[1, 1, 1, 1], num_refinement_blocks=1,
            heads=[1, 2, 4, 8], ffn_expansion_factor=2.0, bias=False,
            LayerNorm_type='BiasFree', n_encoder_res=1)
PRE = dict(type='DataPreprocessor', mean=[0.] * 3, std=[255.] * 3, output_channel_order='RGB')


def _data(batch=2, h=16, scale=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    inputs, samples = [], []
    for _ in range(batch):
        inputs.append(torch.randint(0, 255, (3, h, h), generator=g).float())
        s = DataSample(gt_img=torch.randint(0, 255, (3, h * scale, h * scale), generator=g)
                       .float())
        s.set_metainfo(dict(img_channel_order='rgb', gt_channel_order='rgb'))
        samples.append(s)
    return dict(inputs=inputs, data_samples=samples)


def _s1():
    return MODELS.build(dict(type='DiffIRS1', generator=dict(type='DiffIRS1Net', **TINY),
                             pixel_loss=dict(type='L1Loss'), data_preprocessor=PRE))


def _s2(ckpt, encoder_iters=0):
    return MODELS.build(dict(
        type='DiffIRS2', generator=dict(type='DiffIRS2Net', **TINY),
        pixel_loss=dict(type='L1Loss'), stage1_checkpoint=ckpt, data_preprocessor=PRE,
        train_cfg=dict(encoder_iters=encoder_iters)))


def _opt(model):
    return OptimWrapperDict(
        generator=OptimWrapper(torch.optim.Adam(model.generator.parameters(), lr=1e-3)),
        encoder=OptimWrapper(torch.optim.Adam(
            list(model.generator.cpen.parameters()) + list(model.generator.denoiser.parameters()),
            lr=1e-3)))


@pytest.fixture(scope='module')
def s1_ckpt(tmp_path_factory):
    model = _s1()
    opt = OptimWrapper(torch.optim.Adam(model.generator.parameters(), lr=1e-3))
    for _ in range(2):
        log = model.train_step(_data(), opt)
    assert set(log) >= {'loss', 'loss_pix'}
    path = tmp_path_factory.mktemp('s1') / 's1.pth'
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, path)
    return str(path), model


def test_s1_val_uses_gt_and_ema(s1_ckpt):
    _, model = s1_ckpt
    model.eval()
    out = model.val_step(_data(batch=1))
    assert out[0].output.pred_img.shape == (3, 32, 32)
    data = _data(batch=1)
    data['data_samples'][0] = DataSample(gt_img=torch.zeros(0))  # no GT
    del data['data_samples'][0].gt_img
    with pytest.raises(ValueError, match='ground truth'):
        model.val_step(data)


def test_s2_init_from_stage1_and_phases(s1_ckpt):
    path, s1 = s1_ckpt
    model = _s2(path, encoder_iters=1)
    model.init_weights()
    s1_net = s1.generator_ema  # EMA weights are what stage 2 starts from
    for k, v in s1_net.state_dict().items():
        assert torch.equal(model.teacher.state_dict()[k], v)
        if k.startswith('dirformer.'):
            assert torch.equal(model.generator.state_dict()[k], v)
    opt = _opt(model)
    from mmengine.logging import MessageHub
    hub = MessageHub.get_current_instance()
    before = copy.deepcopy(model.generator.state_dict())
    hub.update_info('iter', 0)
    log = model.train_step(_data(), opt)
    assert 'loss_pix' not in log and 'loss_prior' in log and 'kd_kl' in log
    after = copy.deepcopy(model.generator.state_dict())
    assert all(torch.equal(before[k], after[k]) for k in before if k.startswith('dirformer.'))
    assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith('cpen.'))
    hub.update_info('iter', 1)
    log = model.train_step(_data(), opt)
    assert 'loss_pix' in log
    after2 = model.generator.state_dict()
    assert any(not torch.equal(after[k], after2[k]) for k in after if k.startswith('dirformer.'))
    model.eval()
    out = model.val_step(_data(batch=1))
    assert out[0].output.pred_img.shape == (3, 32, 32)


def test_s2_requires_stage1_checkpoint(tmp_path, s1_ckpt):
    with pytest.raises(CheckpointMismatchError, match='stage1_checkpoint'):
        _s2(None).init_weights()
    with pytest.raises(FileNotFoundError):
        _s2(str(tmp_path / 'missing.pth')).init_weights()
    path, s1 = s1_ckpt
    wrong = dict(TINY, scale=4)
    model = MODELS.build(dict(type='DiffIRS2', generator=dict(type='DiffIRS2Net', **wrong),
                              pixel_loss=dict(type='L1Loss'), stage1_checkpoint=path,
                              data_preprocessor=PRE))
    with pytest.raises(CheckpointMismatchError, match='x2'):
        model.init_weights()


def _saved_s2(s1_path, tmp_path):
    """A stage-2 model initialised from stage 1, and its checkpoint file."""
    s2 = _s2(s1_path)
    s2.init_weights()
    s2_path = tmp_path / 's2.pth'
    torch.save({'state_dict': s2.state_dict()}, s2_path)
    return s2, s2_path


def _gan(s2_path, s1_path, mid_channels=8, **kwargs):
    return MODELS.build(dict(
        type='DiffIRS2GAN', generator=dict(type='DiffIRS2Net', **TINY),
        discriminator=dict(type='UNetDiscriminatorWithSpectralNorm', in_channels=3,
                           mid_channels=mid_channels, skip_connection=True),
        pixel_loss=dict(type='L1Loss'), stage2_checkpoint=str(s2_path),
        stage1_checkpoint=s1_path, data_preprocessor=PRE, **kwargs))


def test_s2_gan_step(s1_ckpt, tmp_path):
    path, _ = s1_ckpt
    s2, s2_path = _saved_s2(path, tmp_path)
    gan = _gan(s2_path, path,
               perceptual_loss=dict(type='VGGPerceptualLoss', allow_random_weights=True,
                                    layer_weights={'conv1_2': 0.1, 'conv2_2': 1.0}),
               gan_loss=dict(type='GANLoss', gan_type='vanilla', loss_weight=1.0))
    gan.init_weights()
    assert torch.equal(gan.generator.state_dict()['cpen.mlp.0.weight'],
                       s2.generator_ema.state_dict()['cpen.mlp.0.weight'])
    assert not any(k.startswith('teacher.') for k in s2.state_dict())  # never saved
    gan_no_teacher = _gan(s2_path, None)
    with pytest.raises(CheckpointMismatchError, match='stage1_checkpoint'):
        gan_no_teacher.init_weights()
    opt = OptimWrapperDict(
        generator=OptimWrapper(torch.optim.Adam(gan.generator.parameters(), lr=1e-3)),
        discriminator=OptimWrapper(torch.optim.Adam(gan.discriminator.parameters(), lr=1e-3)))
    g0 = copy.deepcopy(gan.generator.state_dict())
    d0 = copy.deepcopy(gan.discriminator.state_dict())
    log = gan.train_step(_data(), opt)
    assert set(log) >= {'loss_pix', 'loss_prior', 'loss_perceptual', 'loss_gan', 'loss_d_real',
                        'loss_d_fake'}
    assert any(not torch.equal(g0[k], v) for k, v in gan.generator.state_dict().items())
    assert any(not torch.equal(d0[k], v) for k, v in gan.discriminator.state_dict().items())


def _progressive_s1(monkeypatch, rank):
    import diffir_mm.models.editors.base as base
    monkeypatch.setattr(base, 'get_dist_info', lambda: (rank, 2))
    return MODELS.build(dict(
        type='DiffIRS1', generator=dict(type='DiffIRS1Net', **TINY),
        pixel_loss=dict(type='L1Loss'), data_preprocessor=PRE,
        train_cfg=dict(progressive=dict(iters=[2, 2], mini_batch_sizes=[2, 1],
                                        gt_sizes=[16, 8], scale=2))))


def _crops(model, n=6):
    lq = torch.arange(4 * 3 * 16 * 16, dtype=torch.float32).view(4, 3, 16, 16)
    gt = torch.arange(4 * 3 * 32 * 32, dtype=torch.float32).view(4, 3, 32, 32)
    return [model.progressive(lq, gt, it, model.crop_rng)[0] for it in range(n)]


def test_progressive_crops_differ_between_ranks_and_are_reproducible(monkeypatch):
    torch.manual_seed(123)  # the run seed (mmengine's randomness.seed)
    rank0, rank1 = _progressive_s1(monkeypatch, 0), _progressive_s1(monkeypatch, 1)
    torch.manual_seed(123)
    rank0_again = _progressive_s1(monkeypatch, 0)
    a, b, again = _crops(rank0), _crops(rank1), _crops(rank0_again)
    assert all(torch.equal(x, y) for x, y in zip(a, again))
    assert any(not torch.equal(x, y) for x, y in zip(a, b))
    torch.manual_seed(124)  # another run seed, other crops
    assert any(not torch.equal(x, y) for x, y in zip(a, _crops(_progressive_s1(monkeypatch, 0))))


def test_crop_rng_state_round_trips_through_a_checkpoint(monkeypatch, tmp_path):
    model = _progressive_s1(monkeypatch, 0)
    _crops(model, 3)
    path = tmp_path / 'rng.pth'
    torch.save(model.random_states(), path)
    expected = _crops(model)
    other = _progressive_s1(monkeypatch, 1)
    other.load_random_states(torch.load(path, weights_only=True))
    assert all(torch.equal(x, y) for x, y in zip(expected, _crops(other)))


def test_teacher_is_a_frozen_submodule_left_out_of_state_dict(s1_ckpt):
    path, s1 = s1_ckpt
    model = _s2(path)
    model.init_weights()
    assert dict(model.named_children())['teacher'] is model.teacher
    assert all(not p.requires_grad for p in model.teacher.parameters())
    assert not any(k.startswith('teacher.') for k in model.state_dict())
    # loading our (teacher-less) state dict keeps the teacher and reports nothing missing
    teacher = copy.deepcopy(model.teacher.state_dict())
    fresh = _s2(path)
    result = fresh.load_state_dict(model.state_dict(), strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    assert not all(torch.equal(v, fresh.teacher.state_dict()[k]) for k, v in teacher.items())
    model.train()
    assert not model.teacher.training and model.generator.training


def test_gan_discriminator_checkpoint(s1_ckpt, tmp_path):
    """model.discriminator_checkpoint: ours or an official net_d file; one-line errors."""
    path, _ = s1_ckpt
    _, s2_path = _saved_s2(path, tmp_path)
    v1 = _gan(s2_path, path)
    v1.init_weights()
    with torch.no_grad():  # a "trained" V1 discriminator
        for p in v1.discriminator.parameters():
            p.add_(torch.randn_like(p))
    v1_path = tmp_path / 'v1.pth'
    torch.save({'state_dict': v1.state_dict(), 'meta': {'iter': 400000}}, v1_path)
    want = v1.discriminator.state_dict()

    # V2 fine-tuning: generator and discriminator from the V1 checkpoint
    v2 = _gan(v1_path, path, discriminator_checkpoint=str(v1_path))
    v2.init_weights()
    assert all(torch.equal(v, v2.discriminator.state_dict()[k]) for k, v in want.items())
    assert torch.equal(v2.generator.state_dict()['cpen.mlp.0.weight'],
                       v1.generator_ema.state_dict()['cpen.mlp.0.weight'])

    # an official BasicSR net_d file: {'params': ...} with conv0..conv9 names
    official = tmp_path / 'net_d_400000.pth'
    torch.save({'params': {k.replace('conv_', 'conv'): v for k, v in want.items()}}, official)
    v2_official = _gan(v1_path, path, discriminator_checkpoint=str(official))
    v2_official.init_weights()
    assert all(torch.equal(v, v2_official.discriminator.state_dict()[k])
               for k, v in want.items())

    wrong_width = _gan(v1_path, path, mid_channels=16, discriminator_checkpoint=str(v1_path))
    with pytest.raises(CheckpointMismatchError, match='discriminator_checkpoint') as err:
        wrong_width.init_weights()
    assert '\n' not in str(err.value) and 'differ in shape' in str(err.value)
    no_disc = _gan(v1_path, path, discriminator_checkpoint=str(s2_path))
    with pytest.raises(CheckpointMismatchError, match='no discriminator'):
        no_disc.init_weights()
    with pytest.raises(FileNotFoundError):
        _gan(v1_path, path, discriminator_checkpoint=str(tmp_path / 'nope.pth')).init_weights()


def test_s2_inference_precision_follows_test_cfg(s1_ckpt):
    """fp32 (the default: validation and tools/test.py) is the plain forward; a bf16 test_cfg
    (what the inferencer's 'auto' selects on CUDA) stays within the documented tolerance."""
    from helpers import BF16_REL_TOL, rel_error

    model = _s2(s1_ckpt[0])
    model.init_weights()
    model.eval()
    lq = model.data_preprocessor(_data(batch=1), False)['inputs']
    noise = torch.randn(1, 256, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        fp32 = model.forward_tensor(lq, noise=noise)
        plain = model.generator_ema(lq, noise=noise)
        model.test_cfg = dict(precision='bf16')
        bf16 = model.forward_tensor(lq, noise=noise)
        model.test_cfg = dict(precision='auto')  # fp32 on the CPU
        auto = model.forward_tensor(lq, noise=noise)
    assert torch.equal(fp32, plain) and torch.equal(auto, plain)
    assert 0 < rel_error(bf16, fp32) < BF16_REL_TOL


# ---------------------------------------------------------------- GAN editor: overridable steps
def _gan_opt(gan):
    return OptimWrapperDict(
        generator=OptimWrapper(torch.optim.Adam(gan.generator.parameters(), lr=1e-3)),
        discriminator=OptimWrapper(torch.optim.Adam(gan.discriminator.parameters(), lr=1e-3)))


class HingeDiscriminatorGAN(DiffIRS2GAN):
    """A user's GAN editor: only the discriminator losses change (hinge), calls counted."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.d_calls = {'real': 0, 'fake': 0}

    def d_step_real(self, batch_outputs, batch_gt_data):
        self.d_calls['real'] += 1
        return F.relu(1 - self.discriminator(batch_gt_data.gan)).mean()

    def d_step_fake(self, batch_outputs, batch_gt_data):
        self.d_calls['fake'] += 1
        return F.relu(1 + self.discriminator(batch_outputs.detach())).mean()


def test_gan_subclass_overriding_only_the_discriminator_step_trains(s1_ckpt, tmp_path):
    """A subclass replaces d_step_real / d_step_fake; the generator step is the base class's."""
    from mmengine.logging import MessageHub
    MODELS.register_module(module=HingeDiscriminatorGAN, force=True)
    path, _ = s1_ckpt
    _, s2_path = _saved_s2(path, tmp_path)
    losses = dict(perceptual_loss=dict(type='VGGPerceptualLoss', allow_random_weights=True,
                                       layer_weights={'conv1_2': 0.1, 'conv2_2': 1.0}),
                  gan_loss=dict(type='GANLoss', gan_type='vanilla', loss_weight=0.1))
    models = {}
    for kind in ('DiffIRS2GAN', 'HingeDiscriminatorGAN'):
        torch.manual_seed(7)  # same discriminator and VGG for both
        models[kind] = MODELS.build(dict(
            type=kind, generator=dict(type='DiffIRS2Net', **TINY),
            discriminator=dict(type='UNetDiscriminatorWithSpectralNorm', in_channels=3,
                               mid_channels=8, skip_connection=True),
            pixel_loss=dict(type='L1Loss'), stage2_checkpoint=str(s2_path),
            stage1_checkpoint=path, data_preprocessor=PRE, **losses))
        models[kind].init_weights()
    base, hinge = models['DiffIRS2GAN'], models['HingeDiscriminatorGAN']
    assert type(hinge) is HingeDiscriminatorGAN
    opts = {kind: _gan_opt(model) for kind, model in models.items()}
    d0 = copy.deepcopy(hinge.discriminator.state_dict())
    hub = MessageHub.get_current_instance()
    g_keys = ('loss_pix', 'loss_prior', 'loss_perceptual', 'loss_gan', 'kd_kl')
    generators = []
    for it in range(3):
        hub.update_info('iter', it)
        logs = {kind: model.train_step(_data(seed=it), opts[kind])
                for kind, model in models.items()}
        assert set(logs['HingeDiscriminatorGAN']) == set(logs['DiffIRS2GAN'])
        generators.append(copy.deepcopy(hinge.generator.state_dict()))
        if it == 0:  # same weights so far: the inherited generator step did the same update
            assert all(torch.equal(logs['DiffIRS2GAN'][k], logs['HingeDiscriminatorGAN'][k])
                       for k in g_keys)
            assert all(torch.equal(v, hinge.generator.state_dict()[k])
                       for k, v in base.generator.state_dict().items())
            assert not torch.equal(logs['DiffIRS2GAN']['loss_d_real'],
                                   logs['HingeDiscriminatorGAN']['loss_d_real'])
            d_base = base.discriminator.state_dict()
            assert any(not torch.equal(v, d_base[k])
                       for k, v in hinge.discriminator.state_dict().items())
    assert hinge.d_calls == {'real': 3, 'fake': 3}
    assert any(not torch.equal(v, hinge.discriminator.state_dict()[k]) for k, v in d0.items())
    for before, after in zip(generators, generators[1:]):  # the generator kept training
        assert any(not torch.equal(v, after[k]) for k, v in before.items())


def test_gan_init_weights_goes_through_diffirs2(s1_ckpt, tmp_path, monkeypatch):
    """DiffIRS2.init_weights runs for the GAN stage; every checkpoint is read exactly once."""
    import diffir_mm.models.editors.common as common
    from diffir_mm.models.editors import DiffIRS2
    path, s1 = s1_ckpt
    s2, s2_path = _saved_s2(path, tmp_path)
    calls, reads = [], []
    parent = DiffIRS2.init_weights

    def spy_init_weights(self):
        calls.append(type(self).__name__)
        parent(self)

    def counted_read(source, component='generator'):
        reads.append((str(source), component))
        return read_network(source, component)

    read_network = common.read_network
    monkeypatch.setattr(DiffIRS2, 'init_weights', spy_init_weights)
    monkeypatch.setattr(common, 'read_network', counted_read)
    gan = _gan(s2_path, path)
    gan.init_weights()
    assert calls == ['DiffIRS2GAN']
    assert sorted(reads) == sorted([(str(s2_path), 'generator'), (path, 'generator')])
    for net in (gan.generator, gan.generator_ema):  # the whole stage-2 model, not only G.*
        assert all(torch.equal(v, net.state_dict()[k])
                   for k, v in s2.generator_ema.state_dict().items())
    assert all(torch.equal(v, gan.teacher.state_dict()[k])
               for k, v in s1.generator_ema.state_dict().items())


def test_gan_progressive_crop_cuts_every_target_at_the_same_place(s1_ckpt, tmp_path):
    """With progressive patches the sharpened and the plain GT are cropped like the input."""
    from mmengine.logging import MessageHub
    path, _ = s1_ckpt
    _, s2_path = _saved_s2(path, tmp_path)
    gan = _gan(s2_path, path, train_cfg=dict(
        l1_gt_usm=True, percep_gt_usm=False, gan_gt_usm=True,
        progressive=dict(iters=[1], mini_batch_sizes=[1], gt_sizes=[12], scale=2)))
    data = _data(batch=3)
    for sample in data['data_samples']:
        sample.gt_unsharp = sample.gt_img + 1  # "sharpened": the GT plus 1/255
    MessageHub.get_current_instance().update_info('iter', 0)
    lq, targets, _ = gan._gan_batch(data)
    assert lq.shape == (1, 3, 6, 6)
    assert all(t.shape == (1, 3, 12, 12) for t in targets)
    assert torch.allclose(targets.pixel - targets.percep, torch.full_like(targets.pixel, 1 / 255))
    assert torch.equal(targets.pixel, targets.gan)
