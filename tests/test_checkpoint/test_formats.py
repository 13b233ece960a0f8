"""Every file format to networks in our naming, and the discriminator of GAN checkpoints."""
import pytest
import torch
from helpers import TINY, mmengine_checkpoint, official_checkpoint, tiny_net
from mmengine.logging import MessageHub

from diffir_mm.archs import build_diffir
from diffir_mm.checkpoint import (CheckpointMismatchError, discriminator_state, ours_to_official,
                                  read_components, read_network, save_file)


@pytest.fixture(scope='module')
def nets():
    return tiny_net('deblur', 0), tiny_net('deblur', 1)


def _same(state, net):
    own = net.state_dict()
    return state.keys() == own.keys() and all(torch.equal(v, own[k]) for k, v in state.items())


def test_training_checkpoint_with_message_hub(tmp_path, nets):
    """tools/train.py's layout: state_dict + message_hub + meta + optimizer + rng_state."""
    net, ema = nets
    hub = MessageHub.get_instance('diffir_formats_test')
    hub.update_scalar('train/loss', 0.25)
    ckpt = dict(mmengine_checkpoint(net, ema), message_hub=hub.state_dict(),
                optimizer={'state': {}, 'param_groups': [{'lr': 1e-3}]},
                rng_state={'version': 2, 'world_size': 1, 'states': []})
    ckpt['state_dict']['data_preprocessor.mean'] = torch.zeros(1, 3, 1, 1)
    path = tmp_path / 'iter_2.pth'
    torch.save(ckpt, path)
    components = read_components(path)
    assert set(components) == {'generator', 'generator_ema'}
    chosen = read_network(path)
    assert chosen.file_format == 'mmengine' and chosen.source == 'iter_2.pth [generator_ema]'
    assert _same(chosen.state, ema) and _same(components['generator'].state, net)


def test_basicsr_params_and_params_ema(tmp_path, nets):
    net, ema = nets
    path = tmp_path / 'net_g.pth'
    torch.save({'params': official_checkpoint(net)['params_ema'],
                **official_checkpoint(ema)}, path)
    components = read_components(path)
    assert {k: c.file_format for k, c in components.items()} == \
        {'generator': 'basicsr', 'generator_ema': 'basicsr'}
    assert _same(read_network(path).state, ema)
    assert components['generator'].schedule.keys() >= {'betas', 'alphas_cumprod'}


def test_bare_state_dicts_with_module_prefix_and_safetensors(tmp_path, nets):
    net = nets[0]
    path = tmp_path / 'bare.pth'
    torch.save({f'module.{k}': v for k, v in net.state_dict().items()}, path)
    assert read_network(path).file_format == 'state_dict'
    assert _same(read_network(path).state, net)
    foreign = tmp_path / 'foreign.safetensors'
    save_file(official_checkpoint(net)['params_ema'], foreign)
    assert _same(read_network(foreign).state, net)


def test_lightning_generator_and_teacher(tmp_path):
    s2 = tiny_net('inpaint', 0)
    s1 = build_diffir('inpaint', 1, num_refinement_blocks=0, **TINY)
    sd = {f'generator.{k}': v for k, v in ours_to_official(s2.state_dict()).items()}
    sd.update({f'generatorS1.{k}': v for k, v in ours_to_official(s1.state_dict()).items()})
    sd['discriminator.model.0.weight'] = torch.zeros(1)
    path = tmp_path / 'last.ckpt'
    torch.save({'state_dict': sd, 'epoch': 3}, path)
    components = read_components(path)
    assert set(components) == {'generator', 'teacher'}
    assert components['generator'].file_format == 'lightning'
    assert _same(read_network(path, 'teacher').state, s1) and _same(read_network(path).state, s2)


def test_not_diffir_is_one_line(tmp_path):
    path = tmp_path / 'other.pth'
    torch.save({'params': {'foo': torch.zeros(1)}}, path)
    with pytest.raises(CheckpointMismatchError, match=r'other.pth \[params\] is not a DiffIR'):
        read_network(path)
    with pytest.raises(CheckpointMismatchError, match='holds no stage-1 teacher'):
        read_network(official_checkpoint(tiny_net('deblur')), 'teacher')


def test_discriminator_of_ours_and_of_official_net_d(tmp_path):
    ours = tmp_path / 'gan.pth'
    torch.save({'state_dict': {'generator.x': torch.zeros(1),
                               'discriminator.conv_0.weight': torch.ones(1)}}, ours)
    assert discriminator_state(ours).keys() == {'conv_0.weight'}
    official = tmp_path / 'net_d.pth'
    torch.save({'params': {'module.conv0.weight': torch.ones(1),
                           'conv9.bias': torch.ones(1)}}, official)
    assert discriminator_state(official).keys() == {'conv_0.weight', 'conv_9.bias'}
    no_disc = tmp_path / 's2.pth'
    torch.save({'state_dict': {'generator.x': torch.zeros(1)}}, no_disc)
    with pytest.raises(CheckpointMismatchError, match='holds no discriminator'):
        discriminator_state(no_disc)
