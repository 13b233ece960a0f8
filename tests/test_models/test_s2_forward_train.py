"""The editors' training forward of ``DiffIRS2Net``, plain and through DDP."""
import copy

import pytest
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from diffir_mm.archs import IPR_DIM, build_diffir
from diffir_mm.models.editors.common import forward_train

TINY = dict(dim=8, num_blocks=[1, 1, 1, 1], num_refinement_blocks=1, n_encoder_res=1)


@pytest.fixture
def process_group(tmp_path):
    dist.init_process_group('gloo', init_method=f'file://{tmp_path / "pg"}', rank=0,
                            world_size=1)
    yield
    dist.destroy_process_group()


def _step(module, lq, z, eps):
    image, steps = forward_train(module, lq, z, noise=eps)
    ((image - 0.5).abs().mean() + (steps[-1] - z).abs().mean()).backward()
    return image.detach(), [s.detach() for s in steps]


def _counting_ddp(module):
    """DDP whose gradient all-reduce (run only after a forward through DDP) is counted."""
    wrapped = DistributedDataParallel(module)
    calls = []

    def hook(state, bucket):
        calls.append(1)
        future = torch.futures.Future()
        future.set_result(bucket.buffer())
        return future

    wrapped.register_comm_hook(None, hook)
    return wrapped, calls


def test_forward_train_through_ddp_equals_the_plain_call(process_group):
    torch.manual_seed(0)
    plain = build_diffir('deblur', 2, **TINY).train()
    lq, z, eps = torch.rand(2, 3, 16, 16), torch.rand(2, IPR_DIM), torch.randn(2, IPR_DIM)
    bypassed, bypass_calls = _counting_ddp(copy.deepcopy(plain))
    _step(bypassed.module, lq, z, eps)  # what calling the wrapped network directly would do
    assert not bypass_calls  # no gradient synchronisation

    wrapped, calls = _counting_ddp(copy.deepcopy(plain))
    synced = []
    for _ in range(2):
        a = _step(plain, lq, z, eps)
        b = _step(wrapped, lq, z, eps)
        synced.append(len(calls))
        assert torch.equal(a[0], b[0])
        assert all(torch.equal(x, y) for x, y in zip(a[1], b[1]))
    assert 0 < synced[0] < synced[1]  # DDP synchronised every step (buckets may be rebuilt)
    assert 'forward' not in vars(wrapped.module)  # the inference forward is back
    for (name, p), q in zip(plain.named_parameters(), wrapped.module.parameters()):
        torch.testing.assert_close(p.grad, q.grad, rtol=0, atol=1e-6, msg=name)
    with torch.no_grad():
        assert wrapped(lq, noise=eps).shape == (2, 3, 16, 16)  # an image, as before
