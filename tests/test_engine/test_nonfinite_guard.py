"""NonFiniteGuardHook on a small network and mmengine optimizer wrappers (no training loop).

The end-to-end runs (every editor, two processes, lr=1e6) are in
tests/test_tools/test_train_reliability.py; here each rule is checked in isolation.
"""
import copy
import types
import uuid

import pytest
import torch
from torch import nn

from diffir_mm.engine.errors import TrainingStopped
from diffir_mm.engine.hooks import GeneratorEMAHook
from diffir_mm.engine.nonfinite_guard import (SKIP_COUNT_KEY, SKIPPED_ITER_KEY,
                                              NonFiniteGuardHook)


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.generator = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 1))
        self.generator_ema = copy.deepcopy(self.generator).requires_grad_(False)
        self.discriminator = nn.Linear(1, 1)


def _runner(tmp_path, cuda=False):
    from mmengine.logging import MessageHub, MMLogger

    MMLogger.get_instance(uuid.uuid4().hex)  # the current logger, writing to the captured stdout
    from mmengine.optim import OptimWrapper, OptimWrapperDict

    torch.manual_seed(0)
    model = Tiny().cuda() if cuda else Tiny()
    wrappers = OptimWrapperDict(
        generator=OptimWrapper(torch.optim.Adam(model.generator.parameters(), lr=0.1)),
        discriminator=OptimWrapper(torch.optim.Adam(model.discriminator.parameters(), lr=0.1)))
    return types.SimpleNamespace(model=model, optim_wrapper=wrappers, iter=0, world_size=1,
                                 rank=0, work_dir=str(tmp_path),
                                 message_hub=MessageHub.get_instance(uuid.uuid4().hex))


def _iteration(guard, runner, scale=1.0, d_scale=1.0, inf_grad=False, ema=None, logged=None):
    """One GAN-like iteration as the loop runs it: a generator step, then a discriminator step
    on its output, the guard's and the EMA's ``after_train_iter``; returns the log_vars (plus
    ``logged``: terms that are logged only, not back-propagated)."""
    guard.before_train_iter(runner, runner.iter)
    device = next(runner.model.parameters()).device
    x = torch.randn(8, 3, device=device) * scale
    if inf_grad:  # a finite loss whose gradient overflows
        runner.model.generator[0].weight.register_hook(lambda g: g * float('inf'))
    out = runner.model.generator(x)
    g_loss = out.pow(2).mean()
    runner.optim_wrapper['generator'].update_params(g_loss)
    d_loss = runner.model.discriminator(out.detach()).mean() * d_scale
    runner.optim_wrapper['discriminator'].update_params(d_loss)
    outputs = {'loss_g': g_loss.detach(), 'loss_d': d_loss.detach(), 'kd_kl': torch.tensor(1.),
               **(logged or {})}
    guard.after_train_iter(runner, runner.iter, outputs=outputs)
    if ema is not None:
        ema.after_train_iter(runner, runner.iter)
    runner.iter += 1
    return outputs


def _state(runner):
    return (copy.deepcopy(runner.model.state_dict()),
            copy.deepcopy(runner.optim_wrapper.state_dict()))


def _same(a, b):
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, torch.Tensor):
        return torch.equal(a, b)
    return a == b


def test_a_nan_step_leaves_weights_buffers_optimizers_and_ema_as_they_were(tmp_path, capfd):
    runner = _runner(tmp_path)
    guard, ema = NonFiniteGuardHook(max_consecutive=3), GeneratorEMAHook(momentum=0.5)
    guard.before_train(runner)
    _iteration(guard, runner, ema=ema)
    before = _state(runner)
    outputs = _iteration(guard, runner, scale=float('nan'), ema=ema)  # BN sees the nan
    assert not torch.isfinite(outputs['loss_g'])
    assert _same(before, _state(runner))  # parameters, BN statistics, EMA, Adam moments
    assert runner.message_hub.get_info(SKIP_COUNT_KEY) == 1
    assert runner.message_hub.get_info(SKIPPED_ITER_KEY) == 1
    log = capfd.readouterr().out
    assert 'NonFiniteGuardHook: iteration 2: loss_g = nan, loss_d = nan; the update is ' \
           'skipped (1 in a row, 1 in this run)' in log
    _iteration(guard, runner, ema=ema)  # a finite step is applied again, EMA moves again
    after = _state(runner)
    assert not _same(before[0]['generator.0.weight'], after[0]['generator.0.weight'])
    assert not _same(before[0]['generator_ema.0.weight'], after[0]['generator_ema.0.weight'])


def _after_one_step(tmp_path):
    """A runner and its guard after one finite iteration, and the state then."""
    runner = _runner(tmp_path)
    guard = NonFiniteGuardHook()
    guard.before_train(runner)
    _iteration(guard, runner)
    return runner, guard, _state(runner)


def test_an_inf_gradient_with_a_finite_loss_is_dropped_with_the_later_steps(tmp_path, capfd):
    runner, guard, before = _after_one_step(tmp_path)
    # the discriminator's step is finite but belongs to the same iteration
    outputs = _iteration(guard, runner, inf_grad=True)
    assert all(torch.isfinite(v) for v in outputs.values())
    assert _same(before, _state(runner))
    assert 'iteration 2: gradient of the generator optimizer; the update is skipped' in \
        capfd.readouterr().out


def test_a_nan_discriminator_loss_only_drops_the_discriminator_step(tmp_path, capfd):
    runner, guard, before = _after_one_step(tmp_path)
    _iteration(guard, runner, d_scale=float('nan'))
    model, optim = _state(runner)
    assert not _same(before[0]['generator.0.weight'], model['generator.0.weight'])
    assert _same(before[0]['discriminator.weight'], model['discriminator.weight'])
    assert _same(before[1]['discriminator'], optim['discriminator'])
    assert 'iteration 2: loss_d = nan; the update is skipped' in capfd.readouterr().out


def test_a_nan_loss_term_with_finite_gradients_is_named_and_its_update_applied(tmp_path, capfd):
    runner = _runner(tmp_path)
    guard, ema = NonFiniteGuardHook(), GeneratorEMAHook(momentum=0.5)
    guard.before_train(runner)
    _iteration(guard, runner, ema=ema)
    before = _state(runner)
    _iteration(guard, runner, ema=ema, logged={'loss_extra': torch.tensor(float('nan'))})
    after = _state(runner)
    for key in ('generator.0.weight', 'generator.1.running_mean', 'generator_ema.0.weight'):
        assert not _same(before[0][key], after[0][key]), key  # weights, buffers and EMA moved
    assert runner.message_hub.get_info(SKIP_COUNT_KEY) == 1
    assert runner.message_hub.get_info(SKIPPED_ITER_KEY) is None
    assert 'NonFiniteGuardHook: iteration 2: loss_extra = nan; its gradients were finite, the ' \
           'update is applied (1 in a row, 1 in this run)' in capfd.readouterr().out


def test_too_many_in_a_row_stop_with_one_line_naming_the_last_checkpoint(tmp_path):
    runner = _runner(tmp_path)
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'iter_1.pth'))
    guard = NonFiniteGuardHook(max_consecutive=2)
    guard.before_train(runner)
    _iteration(guard, runner, scale=float('nan'))
    _iteration(guard, runner)  # a finite step resets the count
    _iteration(guard, runner, scale=float('nan'))
    with pytest.raises(TrainingStopped) as err:
        _iteration(guard, runner, scale=float('nan'))
    assert str(err.value) == (
        'iteration 4: 2 non-finite steps in a row (the last: loss_g = nan, loss_d = nan); '
        f'training stopped. Last good checkpoint: {tmp_path / "iter_1.pth"}')
    assert runner.message_hub.get_info(SKIP_COUNT_KEY) == 3


def test_no_checkpoint_with_a_non_finite_value_is_written(tmp_path):
    runner = _runner(tmp_path)
    guard = NonFiniteGuardHook()
    checkpoint = {'state_dict': runner.model.state_dict(),
                  'optimizer': runner.optim_wrapper.state_dict(),
                  'message_hub': {'log': torch.tensor(float('nan'))}}  # logs may hold nan
    guard.before_save_checkpoint(runner, checkpoint)
    checkpoint['state_dict']['generator.2.bias'] = torch.tensor([float('inf')])
    with pytest.raises(TrainingStopped, match=r'iteration 1: the checkpoint would hold non-'
                       r'finite values \(state_dict\.generator\.2\.bias\); it is not written\. '
                       r'Last good checkpoint: none written yet'):
        guard.before_save_checkpoint(runner, checkpoint)


def _amp_wrappers(runner, device, monkeypatch):
    """The runner's optimizers under mmengine's ``AmpOptimWrapper`` (dynamic loss scale).

    On the CPU, mmengine 0.10.7 refuses to build the wrapper and its CUDA ``GradScaler`` turns
    itself off; the wrapper is built with that check patched and given torch's CPU
    ``GradScaler``, so the same skip-on-overflow logic runs on the CPU.
    """
    from mmengine.optim import AmpOptimWrapper, OptimWrapperDict
    from mmengine.optim.optimizer import amp_optimizer_wrapper

    if device == 'cpu':
        monkeypatch.setattr(amp_optimizer_wrapper, 'is_cuda_available', lambda: True)
    wrappers = {}
    for name, wrapper in runner.optim_wrapper.items():
        wrappers[name] = AmpOptimWrapper(optimizer=wrapper.optimizer, loss_scale='dynamic')
        if device == 'cpu':
            wrappers[name].loss_scaler = torch.amp.GradScaler('cpu')
    runner.optim_wrapper = OptimWrapperDict(**wrappers)


@pytest.mark.filterwarnings('ignore:torch.cuda.amp.GradScaler is enabled')  # replaced on the CPU
@pytest.mark.parametrize('device', ['cpu', pytest.param('cuda', marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason='needs a GPU'))])
def test_amp_overflow_is_left_to_the_loss_scaler_and_a_nan_loss_is_counted(tmp_path, device,
                                                                           monkeypatch):
    runner = _runner(tmp_path, cuda=device == 'cuda')
    _amp_wrappers(runner, device, monkeypatch)
    scaler = runner.optim_wrapper['generator'].loss_scaler
    guard = NonFiniteGuardHook()
    guard.before_train(runner)
    with torch.autocast(device, dtype=torch.float16):
        _iteration(guard, runner)
        scaler.update(2.0 ** 40)  # the next scaled fp16 gradients overflow; the loss is finite
        weights = copy.deepcopy(list(runner.model.generator.parameters()))
        outputs = _iteration(guard, runner)
    assert all(torch.isfinite(v) for v in outputs.values())
    assert scaler.get_scale() == 2.0 ** 39  # the scaler found the overflow and skipped
    assert _same(list(runner.model.generator.parameters()), weights)  # generator step skipped
    assert runner.message_hub.get_info(SKIP_COUNT_KEY) is None  # not counted again here
    with torch.autocast(device, dtype=torch.float16):
        _iteration(guard, runner, scale=float('nan'))
    assert runner.message_hub.get_info(SKIP_COUNT_KEY) == 1


def test_the_guard_can_be_switched_off(tmp_path):
    runner = _runner(tmp_path)
    guard = NonFiniteGuardHook(enabled=False)
    guard.before_train(runner)
    _iteration(guard, runner, scale=float('nan'))
    assert torch.isnan(runner.model.generator[0].weight).all()  # applied, as without the hook
    assert runner.message_hub.get_info(SKIP_COUNT_KEY) is None
