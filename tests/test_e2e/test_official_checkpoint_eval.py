"""tools/test.py on the real SR configs with a checkpoint converted from an official release.

The released files cannot be downloaded here, so a randomly initialised full-size network is
saved in the official BasicSR layout (``G.*``/``condition.*``/``denoise.*`` and the
``diffusion.*`` duplicates), converted with ``tools/convert_official_ckpt.py`` and evaluated with
the real-world SR protocol (PSNR-Y crop 4, LPIPS-VGG, DISTS, NIQE; metric backbones random
because no weights can be downloaded). ``params`` and ``params_ema`` differ: ``params`` is the
network with NaN weights, so finite metrics prove that the evaluation ran the EMA weights and
that the conversion kept the two apart.
"""
import json
import math
import os.path as osp

import cv2
import pytest
import torch

from diffir_mm.archs import build_diffir, ours_to_official
from helpers import REPO_ROOT, run_python, sample_image


@pytest.fixture(scope='module')
def converted(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('official')
    torch.manual_seed(0)
    net = build_diffir('sr_x4', 2)
    sd = ours_to_official(net.state_dict(), with_duplicates=True, net=net)
    poisoned = {k: torch.full_like(v, float('nan')) if k.startswith('G.') else v
                for k, v in sd.items()}
    release = tmp / 'DiffIRS2-GAN.pth'
    torch.save({'params': poisoned, 'params_ema': sd}, release)
    out = tmp / 'diffir_sr_s2_gan_converted.pth'
    run_python([osp.join(REPO_ROOT, 'tools', 'convert_official_ckpt.py'), str(release), str(out),
                '--task', 'sr', '--stage', '2', '--scale', '4'])
    root = tmp / 'RealSR'
    for i, name in enumerate(('astronaut', 'coffee')):
        gt = sample_image(name, 192)
        for sub, img in (('HR', gt), ('LR', cv2.resize(gt, (48, 48),
                                                       interpolation=cv2.INTER_AREA))):
            path = root / 'Canon' / 'Test' / '4' / sub / f'{name}.png'
            path.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(path), img[..., ::-1])
    return out, root, net


def _config(tmp, base, root):
    text = f"""
_base_ = ['{REPO_ROOT}/configs/{base}']
_metrics = []
for _m in _base_.realsr_canon_metrics:
    _m = dict(_m)
    if _m['type'] in ('LPIPS', 'DISTS'):
        _m.update(allow_random_weights=True, backbone_path=None)
        if _m['type'] == 'DISTS':
            _m['weights_path'] = None
    _metrics.append(_m)
del _m
test_dataloader = [dict(_base_.eval_loader_cfg, num_workers=0,
                        dataset=dict(_base_.realsr_canon_dataset, data_root='{root}'))]
test_evaluator = [dict(type='Evaluator', metrics=_metrics)]
visualizer = dict(vis_backends=[dict(type='LocalVisBackend')])
"""
    path = tmp / f'test_{base}'
    path.write_text(text)
    return path


@pytest.mark.parametrize('base', ['diffir_sr_s2.py', 'diffir_sr_s2_gan.py'])
def test_tools_test_with_converted_official_checkpoint(converted, tmp_path, base):
    ckpt, root, net = converted
    cfg = _config(tmp_path, base, root)
    out = tmp_path / 'metrics.json'
    proc = run_python([osp.join(REPO_ROOT, 'tools', 'test.py'), str(cfg), str(ckpt),
                       '--work-dir', str(tmp_path / 'work'), '--out', str(out)], timeout=900)
    metrics = json.loads(out.read_text())
    for key in ('PSNR', 'LPIPS', 'DISTS', 'NIQE'):
        assert any(k.startswith('RealSR-Canon/') and key in k for k in metrics), (key, metrics)
    psnr = [v for k, v in metrics.items() if 'PSNR' in k]
    assert psnr and all(math.isfinite(v) for v in psnr), metrics  # the EMA weights, not NaN
    state = torch.load(ckpt, map_location='cpu', weights_only=True)['state_dict']
    assert torch.isnan(state['generator.dirformer.patch_embed.proj.weight']).all()
    assert torch.equal(state['generator_ema.dirformer.patch_embed.proj.weight'],
                       net.dirformer.patch_embed.proj.weight)
    # every network weight came from the converted file (a GAN config also owns a
    # discriminator and VGG features, which are not part of a released generator file)
    missing = [line for line in proc.stdout.splitlines() if 'missing keys' in line]
    assert not any('generator' in line for line in missing), missing
    assert 'unexpected key' not in proc.stdout
