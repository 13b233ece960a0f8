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
        raise RuntimeError('an ONNX Runtime session, say')


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


def test_per_pixel_cost_does_not_depend_on_the_probe_size(monkeypatch):
    import diffir_mm.inference.memory as memory
    from diffir_mm.archs import build_diffir
    net = build_diffir('deblur', stage=2).eval()  # the released deblurring architecture
    costs = []
    for side in (64, 128):
        monkeypatch.setattr(memory, 'PROBE_SIDE', side)
        monkeypatch.setattr(memory, '_PER_PIXEL', {})
        costs.append(activation_bytes_per_pixel(net))
    assert costs[0] > 0 and abs(costs[1] / costs[0] - 1) < 1e-3, costs


def test_available_cpu_memory_is_read_from_meminfo():
    with open('/proc/meminfo', encoding='ascii') as fh:
        info = dict(line.split(':', 1) for line in fh)
    kib = int(info['MemAvailable'].split()[0])
    free = available_bytes('cpu')
    assert 0 < free <= kib * 1024 * 1.1  # within what the kernel reported a moment ago
