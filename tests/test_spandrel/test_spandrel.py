"""diffir_mm.spandrel: DiffIR files in spandrel hosts.

* every released key layout (full size, ``keys.json.gz`` + synthetic weights) loads through
  ``spandrel.ModelLoader().load_from_file`` with the right descriptor, and its call equals
  ``load_official``'s network for the same start vector;
* an image larger than the internal tile equals ``diffir-restore --tile 512``'s output;
* stage-1 files are refused with spandrel's error; DiffIR and a few of spandrel's own
  architectures do not claim each other's files;
* fp16 / bf16 as the descriptor says; unsafe pickles stay refused; no mm package is imported.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Dict

import cv2
import numpy as np
import pytest
import torch

spandrel = pytest.importorskip('spandrel', reason='needs spandrel (requirements/tests.txt)')

import diffir_mm.spandrel as ds  # noqa: E402
from diffir_mm import load_official  # noqa: E402
from diffir_mm.archs import ours_to_official  # noqa: E402
from diffir_mm.inference.io import read_image  # noqa: E402
from diffir_mm.inference.tiling import DEFAULT_TILE_OVERLAP, restore_tiled  # noqa: E402

from helpers import (BF16_REL_TOL, REPO_ROOT, RELEASED_LAYOUTS, TINY, load_keys_fixture,  # noqa: E402,E501
                     official_checkpoint, rel_error, released_weights_spec, synthetic_state_dict,
                     tiny_net)

#: fp16 vs fp32 output, relative error (the bf16 tolerance of precision.py; measured on the CPU:
#: 3e-4 .. 8e-4 for fp16, 2e-3 .. 6e-3 for bf16, full size and tiny networks alike).
HALF_REL_TOL = 1e-2
#: Float32 agreement of two runs of the same computation (the issue's bound).
SAME = 1e-6
TINY_PRESETS = {'deblur': 'deblur', 'sr_x4': 'sr_x4', 'sr_x2': 'sr_x2', 'sr_x1': 'sr_x1',
                'inp': 'inpaint', 'inpbig': 'inpaint_big'}


@pytest.fixture(scope='module')
def registry():
    """spandrel's own architectures, then DiffIR installed."""
    reg = spandrel.ArchRegistry()
    reg.add(*[s for s in spandrel.MAIN_REGISTRY if s.architecture.id != ds.ARCH_ID])
    assert [s.architecture.id for s in ds.install(reg)] == [ds.ARCH_ID]
    return reg


def _loader(registry) -> 'spandrel.ModelLoader':
    return spandrel.ModelLoader(registry=registry)


def _noise(seed: int = ds.SEED) -> torch.Tensor:
    return torch.randn(1, 256, generator=torch.Generator().manual_seed(seed))


def _one_line(err: BaseException) -> str:
    text = str(err)
    assert text and '\n' not in text and 'Traceback' not in text, text
    return text


def _lama_ckpt(generator: Dict[str, torch.Tensor]) -> dict:
    """A LaMa / Lightning ``last.ckpt`` with the entries besides the generator."""
    state = {'generator.' + k: v for k, v in generator.items()}
    state.update({'discriminator.model0.0.weight': torch.zeros(4, 3, 3, 3),
                  'loss_resnet_pl.impl.conv1.weight': torch.zeros(2, 3, 1, 1)})
    return {'state_dict': state, 'epoch': 3, 'global_step': 12,
            'pytorch-lightning_version': '1.2.9'}


def _released_file(folder: Path, name: str) -> Path:
    """The full-size stage-2 layout ``name`` written as released: BasicSR ``params`` +
    ``params_ema`` (``params`` differs, so taking the EMA copy is checked), LaMa ``last.ckpt``."""
    sd = synthetic_state_dict(released_weights_spec(name, 2))
    if name.startswith('inp'):
        path = folder / f'{name}_last.ckpt'
        torch.save(_lama_ckpt(sd), path)
    else:
        key = 'G.patch_embed.proj.weight'
        params = dict(sd, **{key: sd[key] + 1})
        path = folder / f'{name}.pth'
        torch.save({'params': params, 'params_ema': sd}, path)
    return path


# ---------------------------------------------------------------------------------- install


def test_install_adds_diffir_once():
    reg = spandrel.ArchRegistry()
    reg.add(*[s for s in spandrel.MAIN_REGISTRY if s.architecture.id != ds.ARCH_ID])
    before = len(reg)
    added = ds.install(reg)
    assert [s.architecture.id for s in added] == ['DiffIR'] and len(reg) == before + 1
    assert ds.install(reg) == [] and len(reg) == before + 1  # idempotent by default
    with pytest.raises(spandrel.DuplicateArchitectureError):
        ds.install(reg, ignore_duplicates=False)
    # detected after every architecture spandrel ships (no `before=` needed, see below)
    assert reg.architectures('detection')[-1].architecture.id == 'DiffIR'


def test_install_defaults_to_the_main_registry(tmp_path):
    ds.install()
    assert 'DiffIR' in spandrel.MAIN_REGISTRY
    path = tmp_path / 'deblur.pth'
    torch.save(official_checkpoint(tiny_net('deblur')), path)
    assert spandrel.ModelLoader().load_from_file(path).architecture.id == 'DiffIR'


# ----------------------------------------------------------------- released layouts, full size


@pytest.mark.parametrize('name', sorted(RELEASED_LAYOUTS))
def test_released_layout(name, registry, tmp_path):
    """Descriptor type, purpose, scale, channels; output == load_official's (same x_T)."""
    task, scale, big = RELEASED_LAYOUTS[name]
    path = _released_file(tmp_path, name)
    model = _loader(registry).load_from_file(path)
    assert model.architecture.id == 'DiffIR'
    assert (model.scale, model.input_channels, model.output_channels) == (scale, 3, 3)
    assert model.tiling is spandrel.ModelTiling.INTERNAL and model.size_requirements.none
    assert (model.supports_half, model.supports_bfloat16) == (ds.SUPPORTS_HALF,
                                                             ds.SUPPORTS_BFLOAT16)
    assert ('big' in model.tags) == big
    net = load_official(path, task=task, scale=scale, big=big)
    gen = torch.Generator().manual_seed(1)
    if task == 'inpaint':
        assert isinstance(model, spandrel.MaskedImageModelDescriptor)
        assert model.purpose == 'Inpainting'
        image = torch.rand(1, 3, 24, 32, generator=gen)  # a multiple of 8: no padding
        mask = (torch.rand(1, 1, 24, 32, generator=gen) > 0.6).float()
        out = model(image, mask)
        with torch.inference_mode():  # the official predictor: network, then keep known pixels
            pred = net(torch.cat([image * (1 - mask), mask], 1), noise=_noise())
        expected = (mask * pred + (1 - mask) * image).clamp(0, 1)
    else:
        assert isinstance(model, spandrel.ImageModelDescriptor)
        assert model.purpose == ('SR' if task == 'sr' else 'Restoration')
        image = torch.rand(1, 3, *((10, 14) if task == 'sr' else (20, 28)), generator=gen)
        out = model(image)
        with torch.inference_mode():
            expected = net(image, noise=_noise()).clamp(0, 1)
    assert out.shape == expected.shape
    assert (out - expected).abs().max().item() <= SAME
    again = model(image, mask) if task == 'inpaint' else model(image)
    assert torch.equal(out, again), 'the same input must give the same output'


# ------------------------------------------------------------------ larger than the tile size


@pytest.mark.parametrize('preset', ['deblur', 'sr_x4', 'inpaint'])
def test_large_image_is_tiled_as_the_cli_tiles(preset, registry, tmp_path):
    """Above ``TILE`` the call equals ``diffir-restore --tile TILE`` (16-bit PNG in and out: the
    same rounding), and ``restore_tiled`` of ``load_official``'s network with the same x_T."""
    from diffir_mm.cli.restore import main

    net = tiny_net(preset)
    ckpt = tmp_path / f'{preset}.pth'
    torch.save(official_checkpoint(net), ckpt)
    rng = np.random.default_rng(0)
    h, w = (40, 3 * ds.TILE // 2 + 37) if preset != 'sr_x4' else (24, ds.TILE + 88)
    photo = tmp_path / 'photo.png'
    assert cv2.imwrite(str(photo), rng.integers(0, 65536, (h, w, 3), dtype=np.uint16))
    args = [str(photo), '-o', str(tmp_path / 'out'), '--checkpoint', str(ckpt), '--tile',
            str(ds.TILE), '--tile-overlap', str(DEFAULT_TILE_OVERLAP), '--seed', str(ds.SEED),
            '--precision', 'fp32', '--no-progress', '-q']
    image = torch.from_numpy(read_image(str(photo)).rgb).permute(2, 0, 1)[None].contiguous()
    mask = None
    if preset == 'inpaint':
        holes = np.zeros((h, w), np.uint8)
        holes[8:30, 100:700] = 255
        assert cv2.imwrite(str(tmp_path / 'mask.png'), holes)
        args += ['--mask', str(tmp_path / 'mask.png')]
        mask = torch.from_numpy(holes > 0).float()[None, None]
    assert main(args) == 0
    cli = cv2.imread(str(tmp_path / 'out' / 'photo.png'), cv2.IMREAD_UNCHANGED)[..., ::-1]
    model = _loader(registry).load_from_file(ckpt)
    out = model(image, mask) if mask is not None else model(image)
    ours = np.rint(out[0].permute(1, 2, 0).numpy() * 65535).astype(np.uint16)
    assert cli.dtype == np.uint16 and cli.shape == ours.shape
    assert np.array_equal(cli, ours), np.abs(cli.astype(int) - ours).max()

    if mask is None:  # load_official + restore_tiled, same x_T; and the untiled run differs
        official = load_official(ckpt, task=net.task, scale=net.scale, num_refinement_blocks=1,
                                 **TINY)
        with torch.inference_mode():
            tiled = restore_tiled(official, image, noise=_noise(), tile=ds.TILE,
                                  precision='fp32').clamp(0, 1)
            whole = official(image, noise=_noise()).clamp(0, 1)
        assert (out - tiled).abs().max().item() <= SAME
        assert (out - whole).abs().max().item() > 1e-4, 'the image was not tiled'


# ------------------------------------------------------------------------- refusals


@pytest.mark.parametrize('name', sorted(RELEASED_LAYOUTS))
def test_stage1_layouts_are_refused(name, registry):
    sd = {k: torch.empty(shape, device='meta') for k, shape in load_keys_fixture(name, 1).items()}
    with pytest.raises(spandrel.UnsupportedModelError) as err:
        _loader(registry).load_from_state_dict(sd)
    assert type(err.value) is spandrel.UnsupportedModelError
    assert re.search(r'stage-1 \w+.* model.*ground truth.*stage-2', _one_line(err.value))


def test_stage1_files_are_refused(registry, tmp_path):
    from diffir_mm.archs import build_diffir

    s1 = build_diffir('deblur', 1, num_refinement_blocks=1, **TINY)
    official = ours_to_official(s1.state_dict())
    torch.save({'params': official}, tmp_path / 'DiffIRS1.pth')
    torch.save(_lama_ckpt(official), tmp_path / 'last.ckpt')
    for name in ('DiffIRS1.pth', 'last.ckpt'):
        for load in (_loader(registry).load_from_file, ds.load_from_file):
            with pytest.raises(spandrel.UnsupportedModelError, match='stage-1 deblur') as err:
                load(tmp_path / name)
            _one_line(err.value)


def test_non_rgb_variants_are_refused(registry, tmp_path):
    from diffir_mm.archs import build_diffir

    gray = build_diffir('deblur', 2, inp_channels=1, out_channels=1, num_refinement_blocks=1,
                        **TINY)
    torch.save({'params_ema': ours_to_official(gray.state_dict())}, tmp_path / 'gray.pth')
    with pytest.raises(spandrel.UnsupportedModelError, match='only RGB') as err:
        _loader(registry).load_from_file(tmp_path / 'gray.pth')
    _one_line(err.value)


def test_files_with_numpy_objects(registry, tmp_path):
    """spandrel's reader refuses anything but tensors (a training checkpoint's NumPy arrays);
    ``load_from_file`` reads them weights-only and loads the network."""
    net = tiny_net('deblur')
    state = {f'{p}.{k}': v for p in ('generator', 'generator_ema')
             for k, v in net.state_dict().items()}
    torch.save({'state_dict': state, 'message_hub': {'best': np.zeros(2)}}, tmp_path / 'it.pth')
    with pytest.raises(Exception, match=r"Global 'numpy.* is forbidden"):
        _loader(registry).load_from_file(tmp_path / 'it.pth')
    model = ds.load_from_file(tmp_path / 'it.pth')
    image = torch.rand(1, 3, 16, 16)
    with torch.inference_mode():
        expected = net(image, noise=_noise()).clamp(0, 1)
    assert (model(image) - expected).abs().max().item() <= SAME


def _spandrel_models() -> Dict[str, torch.nn.Module]:
    """A few architectures spandrel ships, small, random weights (their own classes)."""
    from spandrel.architectures import (FFTformer, LaMa, NAFNet, RetinexFormer, SCUNet,
                                        SwinIR)
    from spandrel.architectures.Compact import Compact
    from spandrel.architectures.ESRGAN import ESRGAN

    torch.manual_seed(0)
    return {
        'ESRGAN': ESRGAN(num_filters=16, num_blocks=2, scale=4),
        'Compact': Compact(num_feat=16, num_conv=4, upscale=2),
        'SwinIR': SwinIR.SwinIR(embed_dim=12, depths=[2], num_heads=[2], window_size=4,
                                upscale=2, upsampler='pixelshuffle', img_size=16),
        'NAFNet': NAFNet.NAFNet(width=8, middle_blk_num=1, enc_blk_nums=[1, 1],
                                dec_blk_nums=[1, 1]),
        'FFTformer': FFTformer.FFTformer(dim=8, num_blocks=[1, 1, 1], num_refinement_blocks=1),
        'RetinexFormer': RetinexFormer.RetinexFormer(n_feat=8, stage=1, num_blocks=[1, 1, 1]),
        'SCUNet': SCUNet.SCUNet(config=[1] * 7, dim=16),
        'LaMa': LaMa.LaMa(in_nc=4, out_nc=3),
    }


def test_other_architectures_are_not_taken(registry):
    arch = registry['DiffIR'].architecture
    for expected, model in _spandrel_models().items():
        sd = model.state_dict()
        assert not arch.detect(spandrel.canonicalize_state_dict(sd)), expected
        assert registry.load(sd).architecture.id == expected


@pytest.mark.parametrize('name', sorted(RELEASED_LAYOUTS))
@pytest.mark.parametrize('stage', [1, 2])
def test_diffir_files_are_not_taken_by_others(name, stage, registry):
    from diffir_mm.checkpoint import official_to_ours

    sd = {k: torch.empty(shape, device='meta')
          for k, shape in load_keys_fixture(name, stage).items()}
    ours = official_to_ours({k: v for k, v in sd.items() if not k.startswith('diffusion.')})
    layouts = {'BasicSR params_ema': {'params_ema': sd, 'params': sd},
               'LaMa state_dict': {'state_dict': {'generator.' + k: v for k, v in sd.items()}},
               'ours': {'state_dict': {'generator_ema.' + k: v for k, v in ours.items()}},
               'module.': {'module.' + k: v for k, v in sd.items()}}
    for label, ckpt in layouts.items():
        canonical = spandrel.canonicalize_state_dict(ckpt)
        claims = [s.architecture.id for s in registry.architectures('detection')
                  if s.detect(canonical)]
        assert claims == ['DiffIR'], (label, claims)


# -------------------------------------------------------------------------- precision


@pytest.mark.parametrize('preset', sorted(set(TINY_PRESETS.values())))
def test_half_and_bfloat16_as_declared(preset, registry, tmp_path):
    """``.half()`` / ``.bfloat16()`` run (the network in that dtype) within the tolerances."""
    path = tmp_path / 'net.pth'
    torch.save(official_checkpoint(tiny_net(preset)), path)
    _check_dtypes(_loader(registry).load_from_file(path), preset.startswith('inpaint'), (16, 24))


def test_half_and_bfloat16_full_size_sr_x4(registry, tmp_path):
    """The released SR x4 architecture (fp16 convolutions are slow on the CPU: a small input)."""
    model = _loader(registry).load_from_file(_released_file(tmp_path, 'sr_x4'))
    _check_dtypes(model, False, (8, 8))


def _check_dtypes(model, inpaint: bool, size) -> None:
    gen = torch.Generator().manual_seed(2)
    image = torch.rand(1, 3, *size, generator=gen)
    mask = (torch.rand(1, 1, *size, generator=gen) > 0.5).float() if inpaint else None

    def run(dtype):
        args = (image.to(dtype),) + ((mask.to(dtype),) if inpaint else ())
        out = model(*args)
        assert out.dtype == dtype and torch.isfinite(out).all()
        return out.float()

    reference = run(torch.float32)
    for flag, dtype, tol in ((ds.SUPPORTS_HALF, torch.float16, HALF_REL_TOL),
                             (ds.SUPPORTS_BFLOAT16, torch.bfloat16, BF16_REL_TOL)):
        assert flag
        model.to(dtype)
        assert rel_error(run(dtype), reference) <= tol
    model.float()


# ---------------------------------------------------------------------------- safety


class _Payload:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f'touch {self.marker}',)


def test_pickle_payload_stays_refused(registry, tmp_path):
    """spandrel's own reader (its RestrictedUnpickler) and ours (weights_only) both refuse."""
    marker = tmp_path / 'pwned'
    path = tmp_path / 'evil.pth'
    torch.save({'params_ema': {'G.patch_embed.proj.weight': torch.zeros(1)},
                'x': _Payload(marker)}, path)
    with pytest.raises(Exception, match=r"Global '(posix|nt)\.system' is forbidden"):
        _loader(registry).load_from_file(path)
    with pytest.raises(spandrel.UnsupportedModelError, match=r'(posix|nt)\.system') as err:
        ds.load_from_file(path)
    _one_line(err.value)
    assert not marker.exists(), 'the payload ran'


def test_no_mm_package_is_imported(tmp_path):
    """diffir_mm.spandrel works with mmengine / mmcv / mmagic unimportable."""
    torch.save(official_checkpoint(tiny_net('sr_x2')), tmp_path / 'sr.pth')
    code = f"""
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('mmengine', 'mmcv', 'mmagic'):
            raise ImportError('blocked: ' + name)
sys.meta_path.insert(0, Block())
import torch, spandrel
import diffir_mm.spandrel
diffir_mm.spandrel.install()
model = spandrel.ModelLoader().load_from_file({str(tmp_path / 'sr.pth')!r})
out = model(torch.rand(1, 3, 8, 8))
safe = diffir_mm.spandrel.load_from_file({str(tmp_path / 'sr.pth')!r})
assert torch.equal(safe(torch.ones(1, 3, 8, 8)), model(torch.ones(1, 3, 8, 8)))
loaded = {{m.split('.')[0] for m in sys.modules}}
print(tuple(out.shape), sorted(loaded & {{'mmengine', 'mmcv', 'mmagic'}}))
"""
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                          cwd=REPO_ROOT, env=dict(os.environ, PYTHONPATH=REPO_ROOT), timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == '(1, 3, 16, 16) []'
