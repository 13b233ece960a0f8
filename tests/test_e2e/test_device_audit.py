"""Device audit: the project's device code runs on a simulated CUDA device, in CI, without a GPU.

Inside :func:`diffir_mm.utils.fake_cuda.simulated_cuda` every module moved with ``.to('cuda')``
and every tensor made on the device is a fake CUDA tensor, and an operator that meets a CPU
tensor where CUDA refuses one raises ``FakeTensorDeviceMismatchError``. Run there, with the
model and the batch on the device:

* every editor's training step (forward and losses; the backward is recorded, not run) and
  validation step, built from the recipes themselves with tiny networks: stage 1, stage 2 in its
  encoder warm-up and joint phases, GAN V1 / V2 (generator and discriminator steps), inpainting
  stages 1 and 2; the Real-ESRGAN degradation with its training-pair queue; progressive crops;
  fp32 and bf16 mixed precision (``AmpOptimWrapper``, CUDA autocast); the EMA and random-state
  hooks; a resume from a checkpoint mapped onto the device; validation in fp32 and in
  ``precision='auto'``; every metric of the recipe's evaluators on the validation outputs (the
  deep-feature ones on the device, the others copying to the host);
* every branch of the batched degradation, every loss of ours;
* the Restorer, tiled and untiled, in every precision, its fp32 fallback and refusal;
* the inferencer's model path (restoration and inpainting).

``test_audit_fails_on_a_cpu_tensor_planted_in_an_editor_loss`` checks that the audit catches a
``torch.zeros(n)`` added to an editor's loss.
"""
import copy
import os.path as osp
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.logging import MessageHub
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope
from torch._subclasses.fake_tensor import FakeTensorDeviceMismatchError

import diffir_mm.registration  # noqa: F401  (registers)
from diffir_mm.engine import GeneratorEMAHook, RandomStateCheckpointHook
from diffir_mm.engine.random_state_hook import RNG_STATE_KEY, get_rng_state, set_rng_state
from diffir_mm.inference import Restorer
from diffir_mm.inference.precision import NonFiniteOutputError, PrecisionFallbackWarning
from diffir_mm.models.editors import DiffIRS1
from diffir_mm.utils.fake_cuda import is_fake, simulated_cuda, to_device
from helpers import (REPO_ROOT, TINY, import_tool, recipe_batch, sample_image, tiny_net,
                     tiny_recipe)
from mmagic.registry import METRICS, MODELS

init_default_scope('mmagic')

#: One recipe per editor and data path (RealSR: batched degradation; SISR / deblurring:
#: paired data, progressive crops; inpainting: LaMa losses).
RECIPES = ('diffir_sr_s1', 'diffir_sr_s2', 'diffir_sr_s2_gan', 'diffir_sr_s2_gan_v2',
           'diffir_sr_x2_s2', 'diffir_deblur_s1', 'diffir_deblur_s2', 'diffir_sisr_x4_s2_gan',
           'diffir_inpaint_places_s1', 'diffir_inpaint_places_s2')
#: Evaluators of other configs run on an audited recipe's outputs: the demo's inpainting test
#: metrics (ColourError) on the Places stage-2 editor's (the demo has no validation loader).
EXTRA_EVALUATORS = {'diffir_inpaint_places_s2': 'demo/diffir_demo_inpaint_s2'}
#: Also trained in bf16 mixed precision (one per editor class).
AMP_RECIPES = ('diffir_sr_s1', 'diffir_deblur_s2', 'diffir_sr_s2_gan_v2',
               'diffir_inpaint_places_s2')
#: Metrics that compute on the device (the others compute with NumPy on the host).
DEVICE_METRICS = ('LPIPS', 'DISTS', 'PairedFID')
BATCH = 2


@pytest.fixture(autouse=True)
def keep_global_state():
    """The simulation installs placeholder random states on resume: put the real ones back."""
    states = get_rng_state()
    hub = MessageHub.get_current_instance()
    it = hub.get_info('iter', 0)
    yield
    set_rng_state(states)
    hub.update_info('iter', it)


def _on_device(t: torch.Tensor) -> bool:
    return t.device.type == 'cuda'


def _iterations(cfg: Config) -> list:
    """Iterations that reach every phase: warm-up and joint, each progressive patch size, the
    generator-free start of a GAN."""
    train_cfg = cfg.model.get('train_cfg') or {}
    its = {0}
    if train_cfg.get('encoder_iters'):
        its.add(int(train_cfg.encoder_iters))
    if train_cfg.get('progressive'):
        its.add(int(sum(train_cfg.progressive.iters[:-1])))
    if train_cfg.get('disc_init_steps'):
        its.add(int(train_cfg.disc_init_steps))
    return sorted(its)


def _audit_recipe(name: str, amp=None) -> dict:
    """Train, hook, save, resume and validate ``name`` on the simulated device."""
    cfg = tiny_recipe(name)
    pre = cfg.model.data_preprocessor
    if pre.get('type') == 'RealESRGANDegradationPreprocessor':
        pre.queue_size = BATCH  # the second batch goes through the queue's swap
    if amp:
        import_tool('train').enable_amp(cfg, lambda *a, **k: None, amp)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    iterations = _iterations(cfg)
    batches = [recipe_batch(cfg, 'train', num=BATCH) for _ in range(len(iterations) + 2)]
    val_batch = recipe_batch(cfg, 'val', size=96, num=1)  # NIQE's block
    hub = MessageHub.get_current_instance()
    hooks = [GeneratorEMAHook()] if getattr(model, 'generator_ema', None) is not None else []
    rng_hook = RandomStateCheckpointHook()
    runner = SimpleNamespace(model=model, iter=0, world_size=1, rank=0, message_hub=hub,
                             train_loop=SimpleNamespace())
    record = dict(losses=0, logs=[], dtypes=set())
    for conv in model.generator.modules():  # what autocast made of the convolutions
        if isinstance(conv, torch.nn.Conv2d):
            conv.register_forward_hook(lambda m, i, out: record['dtypes'].add(out.dtype))
    metrics = _recipe_metrics(cfg)
    for extra in _extra_evaluator_configs(name):
        metrics = {**_recipe_metrics(extra), **metrics}
    with simulated_cuda() as sim:
        model.to('cuda')  # as the runner: model on the device, then its optimizers
        optim = build_optim_wrapper(model, cfg.optim_wrapper)
        assert all(_on_device(p) for p in model.parameters())

        def step(it: int) -> None:
            hub.update_info('iter', it)
            runner.iter = it
            model.train()
            before = len(sim.losses)
            log = model.train_step(batches.pop(), optim)
            new = sim.losses[before:]
            assert new, 'no backward pass'
            assert all(_on_device(loss) and loss.requires_grad for loss in new)
            assert all(_on_device(v) for k, v in log.items() if k.startswith('loss'))
            record['losses'] += len(new)
            record['logs'].append(sorted(log))
            for hook in hooks:
                hook.after_train_iter(runner, 0)

        for it in iterations:
            step(it)
        # a checkpoint: random states are real CPU tensors, the queue's content on the CPU
        ckpt = dict(meta=dict(iter=runner.iter), state_dict=model.state_dict())
        rng_hook.before_save_checkpoint(runner, ckpt)
        extra = _extra_states(ckpt)
        states = _tensors(ckpt[RNG_STATE_KEY]) + _tensors([e.get('rng') for e in extra])
        assert all(t.device.type == 'cpu' and not is_fake(t) for t in states)
        assert all(t.device.type == 'cpu' for t in _tensors(extra))
        # resume it as mmengine does on a GPU machine: every tensor mapped onto the device
        resumed = to_device(ckpt, 'cuda')
        model.load_state_dict(resumed['state_dict'])
        rng_hook.after_load_checkpoint(runner, resumed)
        rng_hook.before_train_epoch(runner)
        step(iterations[-1] + 1)
        model.eval()
        outputs = model.val_step(val_batch)
        if getattr(model, 'stage1_checkpoint', 'stage 1') != 'stage 1':  # stage 2: bf16 too
            model.test_cfg = dict(model.test_cfg or {}, precision='auto')
            outputs = model.val_step(copy.deepcopy(val_batch))
            assert sim.reads, 'no finite check in reduced precision'
        record['metrics'] = _evaluate(sim, metrics, val_batch, outputs)
    record['outputs'] = outputs
    return record


def _tensors(node) -> list:
    if isinstance(node, torch.Tensor):
        return [node]
    if isinstance(node, dict):
        node = list(node.values())
    if isinstance(node, (list, tuple)):
        return [t for item in node for t in _tensors(item)]
    return []


def _extra_states(ckpt: dict) -> list:
    return [v for k, v in ckpt['state_dict'].items() if k.endswith('_extra_state')]


def _metric_configs(node) -> list:
    """The metric dicts of an evaluator config (a metric, a list, ``Evaluator`` dicts)."""
    if isinstance(node, (list, tuple)):
        return [m for item in node for m in _metric_configs(item)]
    if isinstance(node, dict) and 'metrics' in node:
        return _metric_configs(node['metrics'])
    return [node] if isinstance(node, dict) else []


def _extra_evaluator_configs(name: str) -> list:
    """The configs of :data:`EXTRA_EVALUATORS` whose metrics the recipe ``name`` also runs."""
    extra = EXTRA_EVALUATORS.get(name)
    return [Config.fromfile(osp.join(REPO_ROOT, 'configs', f'{extra}.py'))] if extra else []


def _recipe_metrics(cfg: Config) -> dict:
    """Every metric of the recipe's evaluators (validation, test, the alternatives), one per
    type; the deep-feature ones with random weights, on the device (``device='cuda'``: the
    network moves there on the first image)."""
    evaluators = [v for k, v in cfg.items() if k.endswith('evaluator')]
    built = {}
    for metric in _metric_configs(evaluators):
        if metric['type'] in built:
            continue
        if metric['type'] in DEVICE_METRICS:
            metric = dict(metric, device='cuda', allow_random_weights=True)
            for key in ('backbone_path', 'weights_path', 'inception_path'):
                metric.pop(key, None)
        built[metric['type']] = METRICS.build(metric)
    return built


def _evaluate(sim, metrics: dict, data_batch: dict, outputs: list) -> list:
    """``process`` the outputs as mmengine's ``Evaluator`` does (host metrics copy them to the
    host, the deep-feature ones compute on the device)."""
    with sim.host_copies():
        for metric in metrics.values():
            metric.process(data_batch, [o.to_dict() for o in outputs])
            assert len(metric.results) == len(outputs)
            if metric.__class__.__name__ in DEVICE_METRICS:
                assert all(_on_device(p) for p in metric.net.parameters())
    return sorted(metrics)


@pytest.mark.parametrize('name', RECIPES)
def test_recipe_runs_on_the_device(name):
    record = _audit_recipe(name)
    assert torch.bfloat16 not in record['dtypes'] or 's2' in name  # val in 'auto' is bf16
    gan = name.endswith(('_gan', '_gan_v2')) or '_inpaint_' in name
    steps = len(record['logs'])
    assert record['losses'] >= steps * (2 if gan else 1)
    for out in record['outputs']:
        pred = out.output.pred_img
        assert pred.shape[-2:] == out.gt_img.shape[-2:]
    assert {'PSNR', 'SSIM'} & set(record['metrics'])


def test_the_audited_recipes_use_every_metric_of_ours():
    ours = {name for name, cls in METRICS.module_dict.items()
            if cls.__module__.startswith('diffir_mm.')}
    used = {m['type'] for name in RECIPES
            for cfg in [tiny_recipe(name)] + _extra_evaluator_configs(name)
            for m in _metric_configs([v for k, v in cfg.items() if k.endswith('evaluator')])}
    assert ours and ours <= used, f'metrics no audited recipe evaluates: {ours - used}'


@pytest.mark.parametrize('name', AMP_RECIPES)
def test_recipe_trains_in_bf16_on_the_device(name):
    record = _audit_recipe(name, amp='bf16')
    assert record['losses'] > 0 and torch.bfloat16 in record['dtypes']


def test_audit_fails_on_a_cpu_tensor_planted_in_an_editor_loss(monkeypatch):
    original = DiffIRS1.forward_train

    def planted(self, inputs, data_samples=None, **kwargs):
        losses = original(self, inputs, data_samples, **kwargs)
        n = losses['loss_pix'].numel()
        losses['loss_pix'] = losses['loss_pix'] + torch.zeros(n)  # created on the CPU
        return losses

    monkeypatch.setattr(DiffIRS1, 'forward_train', planted)
    with pytest.raises(FakeTensorDeviceMismatchError, match='cuda:0 and cpu'):
        _audit_recipe('diffir_deblur_s1')


# ----------------------------------------------------------------------------- degradation
@pytest.mark.parametrize('kind', ['gaussian', 'poisson'])
def test_every_degradation_branch_runs_on_the_device(kind):
    cfg = tiny_recipe('diffir_sr_s2_gan_v2')
    pre = MODELS.build(cfg.model.data_preprocessor)
    batch = recipe_batch(cfg, 'train', num=BATCH)
    kernels = {k: torch.stack([s.get(k) for s in batch['data_samples']]).float()
               for k in ('kernel1', 'kernel2', 'sinc_kernel')}
    gt = torch.rand(BATCH, 3, 96, 96)
    with simulated_cuda():
        pre.to('cuda')
        gt, kernels = gt.cuda(), {k: v.cuda() for k, v in kernels.items()}
        for second_blur in (False, True):
            for sinc_first in (False, True):
                for mode in ('area', 'bilinear', 'bicubic'):
                    draws = pre.draw(BATCH, gt.device)
                    for noise in ('first_noise', 'second_noise'):
                        draws[noise]['kind'] = kind
                    draws.update(second_blur=second_blur, sinc_first=sinc_first,
                                 first_mode=mode, second_mode=mode, final_mode=mode,
                                 first_factor=1.3, second_factor=0.7)
                    lq = pre.degrade(gt, kernels, draws)
                    assert _on_device(lq) and lq.shape[-1] == 96 // pre.scale


# ----------------------------------------------------------------------------- losses
def test_every_loss_runs_on_the_device():
    perceptual = MODELS.build(dict(type='VGGPerceptualLoss', allow_random_weights=True,
                                   style_weight=1.0, criterion='mse',
                                   layer_weights={'conv1_2': 0.1, 'conv2_2': 1.0}))
    pl = MODELS.build(dict(type='ResNetPLLoss', allow_random_weights=True, norm_eval=True))
    masked = MODELS.build(dict(type='MaskedL1Loss'))
    fm = MODELS.build(dict(type='DiscFeatureMatchingLoss'))
    adversarial = [MODELS.build(dict(type='NonSaturatingR1Loss', mask_as_fake_target=m))
                   for m in (True, False)]
    disc = MODELS.build(dict(type='NLayerPatchDiscriminator', ndf=8, n_layers=2))
    with simulated_cuda() as sim:
        for module in (perceptual, pl, disc):
            module.to('cuda')
        pred = torch.rand(2, 3, 32, 32, device='cuda', requires_grad=True)
        gt = torch.rand(2, 3, 32, 32).cuda()
        mask = (torch.rand(2, 1, 32, 32, device='cuda') > 0.5).float()
        losses = [*perceptual(pred, gt), pl(pred, gt), masked(pred, gt, mask)]
        logits, features = disc.forward_features(pred)
        _, real_features = disc.forward_features(gt)
        losses.append(fm(features, real_features))
        for adv in adversarial:
            losses.append(adv.generator_loss(logits))
            losses.append(adv.discriminator_loss(disc, gt, disc(gt), disc(pred.detach()),
                                                 mask)[0])
        assert all(_on_device(loss) and loss.dim() == 0 for loss in losses)
        torch.stack(losses).sum().backward()
        assert len(sim.losses) == 1


# ----------------------------------------------------------------------------- inference
@pytest.mark.parametrize('preset', ['sr_x4', 'deblur', 'inpaint'])
@pytest.mark.parametrize('tile', [None, 16])
def test_restorer_runs_on_the_device_in_every_precision(preset, tile):
    net = tiny_net(preset)
    photo = sample_image('coffee', 28)[:24]  # tiled: 2 x 3 tiles, in 3 batches
    mask = np.zeros(photo.shape[:2], np.uint8)
    mask[6:16, 8:20] = 255
    masks = [mask] if preset == 'inpaint' else None
    scale = net.scale
    with simulated_cuda() as sim:
        for precision in ('fp32', 'bf16', 'fp16', 'auto'):
            restorer = Restorer(copy.deepcopy(net), device='cuda', precision=precision,
                                tile=tile, tile_overlap=8, tile_batch=2)
            assert restorer.precision == ('bf16' if precision == 'auto' else precision)
            (out, ) = restorer.restore_batch([photo], masks=masks)
            assert out.shape == (24 * scale, 28 * scale, 3)
            assert restorer._mean.device.type == 'cuda'
        assert len(sim.reads) >= 4  # every reduced-precision forward checked, and the copies


def test_restorer_fallback_and_refusal_run_on_the_device():
    net = tiny_net('deblur')
    lq = torch.rand(1, 3, 24, 24)
    with simulated_cuda(answers=[False, True]):
        restorer = Restorer(net, device='cuda', precision='fp16')
        with pytest.warns(PrecisionFallbackWarning):
            out = restorer.restore_tensor(lq)
        assert out.shape == lq.shape and out.device.type == 'cpu'
    with simulated_cuda(answers=[False]):
        restorer = Restorer(net, device='cuda', precision='fp32')
        with pytest.raises(NonFiniteOutputError):
            restorer.restore_tensor(lq)


@pytest.fixture(scope='module')
def inferencer_files(tmp_path_factory):
    from diffir_mm.archs import build_diffir, ours_to_official
    tmp = tmp_path_factory.mktemp('device_inferencer')
    torch.manual_seed(0)
    deblur = build_diffir('deblur', 2, num_refinement_blocks=1, **TINY)
    torch.save({'state_dict': {f'{p}.{k}': v for p in ('generator', 'generator_ema')
                               for k, v in deblur.state_dict().items()}}, tmp / 'deblur.pth')
    (tmp / 'deblur.py').write_text(
        f"_base_ = ['{REPO_ROOT}/configs/diffir_deblur_s2.py']\n"
        f"model = dict(generator=dict(**{dict(TINY, num_refinement_blocks=1)!r}))\n")
    inpaint = build_diffir('inpaint', 2, num_refinement_blocks=0, **TINY)
    official = ours_to_official(inpaint.state_dict(), with_duplicates=True, net=inpaint)
    torch.save({'state_dict': {f'generator.{k}': v for k, v in official.items()}},
               tmp / 'inpaint.ckpt')
    (tmp / 'inpaint.py').write_text(
        f"_base_ = ['{REPO_ROOT}/configs/demo/diffir_demo_inpaint_s2.py']\n"
        f"model = dict(generator=dict(**{dict(TINY, num_refinement_blocks=0)!r}))\n")
    photo = sample_image('chelsea', 40)
    cv2.imwrite(str(tmp / 'photo.png'), photo[..., ::-1])
    mask = np.zeros(photo.shape, np.uint8)
    mask[8:24, 10:30] = 255
    cv2.imwrite(str(tmp / 'mask.png'), mask)
    return tmp


@pytest.mark.parametrize('task', ['deblur', 'inpaint'])
def test_inferencer_model_path_runs_on_the_device(inferencer_files, task):
    from mmagic.apis import MMagicInferencer
    tmp = inferencer_files
    ckpt = tmp / ('inpaint.ckpt' if task == 'inpaint' else 'deblur.pth')
    inputs = dict(img=str(tmp / 'photo.png'))
    if task == 'inpaint':
        inputs['mask'] = str(tmp / 'mask.png')
    with simulated_cuda() as sim:
        wrapper = MMagicInferencer(model_config=str(tmp / f'{task}.py'), model_ckpt=str(ckpt),
                                   device='cuda')
        inferencer = wrapper.inferencer.inferencer
        assert all(_on_device(p) for p in inferencer.model.parameters())
        preds = inferencer.forward(inferencer.preprocess(**inputs))
        preds = preds if isinstance(preds, list) else [preds]
        pred = preds[0].output.pred_img if 'output' in preds[0] else preds[0].pred_img
        assert pred.shape[-2:] == (40, 40)
        assert sim.reads, 'the inferencer serves precision auto: bf16 on CUDA, checked'


def test_to_device_maps_a_checkpoint_like_torch_load():
    with simulated_cuda():
        mapped = to_device(dict(a=torch.zeros(2), b=[torch.ones(1), 3], c='x'))
    assert mapped['a'].device.type == 'cuda' and mapped['b'][1] == 3 and mapped['c'] == 'x'
    assert osp.isdir(REPO_ROOT)
