"""diffir_mm.inference.memory: the traced peak of live tensors, per pixel, and free memory."""
import torch
from torch import nn

from diffir_mm.inference.memory import (MARGIN, activation_bytes_per_pixel, available_bytes,
                                        untiled_peak_bytes)


class _Toy(nn.Module):
    """A stand-in network whose allocations are known: 4 bytes per float32."""

    input_multiple, lq_unshuffle, lq_prior_channels = 8, 1, 3

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(1000))  # weights are not activations

    def estimate_prior(self, lq, noise):
        return noise * 2

    def restore(self, lq, prior):
        a = lq * 2
        b = a.view(-1)  # a view: no new memory
        c = torch.cat([a, a], 1)  # peak here: lq, noise, prior, a, c
        del a, b  # a's storage is freed once its last view is gone
        return c[:, :3] + 1  # c and the output: less than the peak


class _Untraceable(_Toy):
    def restore(self, lq, prior):
        return torch.from_numpy(lq.numpy())  # data-dependent: impossible on the meta device


def test_peak_counts_each_storage_once_while_alive():
    side = 64  # the probe (a multiple of input_multiple)
    image = 3 * side * side * 4
    expected = image + 1024 + 1024 + image + 2 * image  # lq, noise, prior, a, c
    assert activation_bytes_per_pixel(_Toy()) == expected / side ** 2


def test_untiled_peak_scales_with_the_padded_pixels():
    net = _Toy()
    per_pixel = activation_bytes_per_pixel(net)
    assert untiled_peak_bytes(net, 60, 61) == int(per_pixel * 64 * 64 * MARGIN)
    assert untiled_peak_bytes(net, 1000, 2000) == int(per_pixel * 1000 * 2000 * MARGIN)


def test_untraceable_network_gives_no_estimate():
    assert activation_bytes_per_pixel(_Untraceable()) is None
    assert untiled_peak_bytes(_Untraceable(), 64, 64) is None


def test_traced_network_runs_nothing_for_real():
    from helpers import tiny_net
    net = tiny_net('deblur')
    before = {k: v.clone() for k, v in net.state_dict().items()}
    per_pixel = activation_bytes_per_pixel(net)
    assert per_pixel > 0
    assert all(torch.equal(v, before[k]) for k, v in net.state_dict().items())
    assert all(p.device.type == 'cpu' for p in net.parameters())  # the copy went to meta


def test_available_cpu_memory_is_read_from_meminfo():
    with open('/proc/meminfo', encoding='ascii') as fh:
        info = dict(line.split(':', 1) for line in fh)
    kib = int(info['MemAvailable'].split()[0])
    free = available_bytes('cpu')
    assert 0 < free <= kib * 1024 * 1.1  # within what the kernel reported a moment ago
