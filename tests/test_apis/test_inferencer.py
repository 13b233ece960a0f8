"""``MMagicInferencer('diffir', ...)``: by name + setting and by config + checkpoint."""

import cv2
import pytest
import torch

import diffir_mm.registration  # noqa: F401  (registers 'diffir' with MMagicInferencer)
from diffir_mm.archs import CheckpointMismatchError, build_diffir, ours_to_official
from helpers import REPO_ROOT, sample_image
from mmagic.apis import MMagicInferencer

TINY = dict(dim=8, num_blocks=[1, 1, 1, 1], num_refinement_blocks=1, n_encoder_res=1)


@pytest.fixture(scope='module')
def photo(tmp_path_factory):
    path = tmp_path_factory.mktemp('photo') / 'chelsea.png'
    cv2.imwrite(str(path), sample_image('chelsea', 48)[..., ::-1])
    return str(path)


def test_diffir_is_listed():
    MMagicInferencer.init_inference_supported_models_cfg()
    assert 'diffir' in MMagicInferencer.get_inference_supported_models()
    assert 'diffir' in MMagicInferencer.get_task_supported_models('Image Restoration')
    # MMagic's own models are untouched
    assert 'real_esrgan' in MMagicInferencer.get_inference_supported_models()


def test_name_and_setting_with_official_checkpoint(tmp_path, photo):
    """Setting 1 of configs/metafile.yml is real-world x4 SR; the file is official-layout."""
    torch.manual_seed(0)
    net = build_diffir('sr_x4', 2)
    official = ours_to_official(net.state_dict(), with_duplicates=True, net=net)
    ckpt = tmp_path / 'DiffIRS2.pth'
    torch.save({'params_ema': official}, ckpt)
    inferencer = MMagicInferencer('diffir', model_setting=1, model_ckpt=str(ckpt), device='cpu')
    out = tmp_path / 'out' / 'restored.png'
    inferencer.infer(img=photo, result_out_dir=str(out))
    result = cv2.imread(str(out))
    assert result.shape == (192, 192, 3)
    # the converted weights are really the checkpoint's (not a random initialisation)
    model = inferencer.inferencer.inferencer.model
    assert torch.equal(model.generator_ema.cpen.mlp[0].weight, net.cpen.mlp[0].weight)


def test_config_and_checkpoint_tiny_model(tmp_path, photo):
    torch.manual_seed(0)
    net = build_diffir('deblur', 2, **TINY)
    ckpt = tmp_path / 'tiny.pth'
    torch.save({'state_dict': {f'{p}.{k}': v for p in ('generator', 'generator_ema')
                               for k, v in net.state_dict().items()}}, ckpt)
    cfg = tmp_path / 'tiny_deblur.py'
    cfg.write_text(f"_base_ = ['{REPO_ROOT}/configs/diffir_deblur_s2.py']\n"
                   f"model = dict(generator=dict(**{TINY!r}))\n")
    for kwargs in (dict(model_name='diffir'), dict()):  # with and without the name
        inferencer = MMagicInferencer(model_config=str(cfg), model_ckpt=str(ckpt),
                                      device='cpu', **kwargs)
        out = tmp_path / f'restored_{len(kwargs)}.png'
        inferencer.infer(img=photo, result_out_dir=str(out))
        restored = cv2.imread(str(out))
        assert restored.shape == (48, 48, 3)
        # the inferencer runs 'auto' precision (bf16 on CUDA, fp32 here)
        assert inferencer.inferencer.inferencer.model.test_cfg['precision'] == 'auto'
        # a DiffIR deblurring net is a global residual: the output is an image, not noise
        assert abs(restored.astype(float).mean() - cv2.imread(photo).astype(float).mean()) < 40


def test_wrong_checkpoint_is_refused(tmp_path):
    net = build_diffir('deblur', 2, **TINY)
    ckpt = tmp_path / 'deblur.pth'
    torch.save({'params_ema': ours_to_official(net.state_dict())}, ckpt)
    with pytest.raises(CheckpointMismatchError, match='deblur'):
        MMagicInferencer('diffir', model_setting=1, model_ckpt=str(ckpt), device='cpu')
    with pytest.raises(ValueError, match='model_ckpt'):
        MMagicInferencer('diffir', model_setting=1, device='cpu')
    with pytest.raises(FileNotFoundError):
        MMagicInferencer('diffir', model_ckpt=str(tmp_path / 'missing.pth'), device='cpu')


def test_auto_precision_is_a_default_only_for_diffir_models():
    from types import SimpleNamespace

    from diffir_mm.apis.inferencer import serve_in_auto_precision

    def editor(module, test_cfg):
        cls = type('Editor', (), {'__module__': module})
        model = cls()
        model.test_cfg = test_cfg
        return SimpleNamespace(model=model)

    served = editor('diffir_mm.models.editors.diffir_s2', None)
    serve_in_auto_precision(served)
    assert served.model.test_cfg == {'precision': 'auto'}
    configured = editor('diffir_mm.models.editors.diffir_s2', dict(precision='fp32'))
    serve_in_auto_precision(configured)
    assert configured.model.test_cfg == {'precision': 'fp32'}
    other = editor('mmagic.models.editors.real_esrgan', None)
    serve_in_auto_precision(other)
    assert other.model.test_cfg is None
