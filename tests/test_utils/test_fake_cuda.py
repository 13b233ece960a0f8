"""The simulated CUDA device of the device audit (diffir_mm.utils.fake_cuda).

What the audit relies on: device tensors mix with CPU tensors only where CUDA allows it, modules
move with ``.to('cuda')``, CPU work keeps its values, CUDA autocast changes dtypes, backward
passes and host reads are intercepted, CUDA generators and random states behave as PyTorch's, and
nothing of the simulation leaks out of the context.
"""
import numpy as np
import pytest
import torch
from mmengine.runner.amp import autocast as mmengine_autocast
from torch import nn
from torch._subclasses.fake_tensor import (DataDependentOutputException,
                                          FakeTensorDeviceMismatchError)

from diffir_mm.utils import host_reads
from diffir_mm.utils.fake_cuda import is_fake, simulated_cuda, to_device


def test_cpu_and_cuda_tensors_meet_only_where_cuda_allows_it():
    with simulated_cuda():
        x = torch.empty(2, device='cuda')
        with pytest.raises(FakeTensorDeviceMismatchError):
            x + torch.randn(2)
        with pytest.raises(FakeTensorDeviceMismatchError):
            x + torch.zeros(2)  # a real CPU tensor meets a device tensor
        assert (x + torch.tensor(2.0)).device.type == 'cuda'  # 0-dim CPU tensors are allowed
        assert (x.cpu() + torch.randn(2)).device.type == 'cpu'
        assert torch.cuda.is_available() and torch.cuda.get_device_capability() == (9, 0)
    assert not is_fake(torch.zeros(1))


def test_modules_move_and_record_autograd_but_backward_is_recorded():
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    with simulated_cuda() as sim:
        net.to('cuda')
        assert all(p.device.type == 'cuda' and is_fake(p) for p in net.parameters())
        loss = net(torch.rand(2, 3, 8, 8).cuda()).mean()
        assert loss.requires_grad and loss.device.type == 'cuda'
        loss.backward()
        assert sim.losses == [loss] and net[0].weight.grad is None
        with torch.autocast('cuda', dtype=torch.bfloat16):
            assert net[0](torch.rand(1, 3, 8, 8, device='cuda')).dtype == torch.bfloat16
        # mmengine's autocast (AmpOptimWrapper) picks its device when mmengine is imported
        with mmengine_autocast(dtype=torch.bfloat16):
            assert net[0](torch.rand(1, 3, 8, 8, device='cuda')).dtype == torch.bfloat16


def test_cpu_work_keeps_its_values_and_real_losses_really_backpropagate():
    w = torch.ones(3, requires_grad=True)
    with simulated_cuda() as sim:
        sizes = torch.tensor([[3, 4], [3, 6]])
        assert int((sizes.max(0)[0] - sizes).sum()) == 2  # host-side shape arithmetic
        (w * 2).sum().backward()
    assert sim.losses == [] and torch.equal(w.grad, torch.full((3, ), 2.0))


def test_device_values_are_read_only_through_host_reads():
    with simulated_cuda(answers=[False]) as sim:
        flags = torch.ones(3, device='cuda') > 0
        with pytest.raises(DataDependentOutputException):
            bool(flags.all())
        assert host_reads.read_scalar(flags.all()) is False  # the given answer
        assert host_reads.read_scalar(flags.all()) is True  # then placeholders
        arr = host_reads.read_array(torch.ones(2, 5, device='cuda', dtype=torch.float16))
        assert arr.shape == (2, 5) and arr.dtype == np.float16
        assert len(sim.reads) == 3
        assert host_reads.read_scalar(torch.tensor(7)) == 7  # real tensors really read
        with pytest.raises(Exception):
            flags.cpu().numpy()  # third-party host copies only inside host_copies()
        with sim.host_copies():
            copy = torch.ones(4, 4, device='cuda').cpu().numpy()
            assert copy.shape == (4, 4) and copy.std() > 0  # placeholders, not constant
            with pytest.raises(TypeError, match='cuda'):
                torch.ones(2, device='cuda').numpy()  # as PyTorch: copy to the host first
        assert len(sim.reads) == 4


def test_cuda_generators_and_random_states_follow_pytorch_rules():
    state = torch.get_rng_state()
    with simulated_cuda():
        gen = torch.Generator(device='cuda')
        assert gen.device == torch.device('cuda', 0) and isinstance(gen, torch.Generator)
        assert isinstance(torch.Generator(), torch.Generator)
        gen.manual_seed(3)
        assert torch.rand(4, generator=gen, device='cuda').device.type == 'cuda'
        saved = gen.get_state()
        assert saved.device.type == 'cpu' and not is_fake(saved)
        with pytest.raises(TypeError, match='CPU'):
            gen.set_state(saved.cuda())  # what a checkpoint mapped to the GPU would hand it
        gen.set_state(saved.cuda().cpu())  # no values to install: checked only
        with pytest.raises(TypeError, match='CPU'):
            torch.set_rng_state(state.cuda())
        torch.set_rng_state(state)
        nested = to_device({'a': [torch.zeros(1)], 'b': 1})
        assert nested['a'][0].device.type == 'cuda' and nested['b'] == 1
    assert type(torch.Generator()) is torch._C.Generator


def test_gradient_penalties_get_zero_gradients_of_the_right_place():
    with simulated_cuda():
        x = torch.rand(2, 3, device='cuda', requires_grad=True)
        (grad, ) = torch.autograd.grad((x ** 2).sum(), x, create_graph=True)
        assert grad.shape == x.shape and grad.device.type == 'cuda'
