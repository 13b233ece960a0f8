"""``MMagicInferencer`` on a DiffIR inpainting config: ``infer(img=..., mask=...)`` gives the
Restorer's (= ``diffir-restore --mask``'s = the official predictor's) pixels; bad masks fail in
one line."""
import cv2
import numpy as np
import pytest
import torch

import diffir_mm.registration  # noqa: F401  (registers 'diffir' with MMagicInferencer)
from diffir_mm.apis.inpainting_inferencer import DiffIRInpaintingInferencer
from diffir_mm.archs import build_diffir, ours_to_official
from diffir_mm.inference import Restorer
from helpers import REPO_ROOT, sample_image
from mmagic.apis import MMagicInferencer

TINY = dict(dim=8, num_blocks=[1, 1, 1, 1], num_refinement_blocks=0, n_encoder_res=1)
H, W = 45, 61  # not multiples of 8
SEED = 2022  # MMagicInferencer's default seed: x_T is the first draw of torch's global RNG


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('inpaint_inferencer')
    torch.manual_seed(0)
    net = build_diffir('inpaint', 2, **TINY).eval()
    with torch.no_grad():  # default init gives a near-constant output: make it input-driven
        for name, param in net.dirformer.named_parameters():
            if param.dim() > 1:
                param.mul_(2.0)
    ckpt = tmp / 'last.ckpt'  # the LaMa layout of the released inpainting files
    official = ours_to_official(net.state_dict(), with_duplicates=True, net=net)
    torch.save({'state_dict': {f'generator.{k}': v for k, v in official.items()}}, ckpt)
    cfg = tmp / 'tiny_inpaint_s2.py'
    cfg.write_text(f"_base_ = ['{REPO_ROOT}/configs/demo/diffir_demo_inpaint_s2.py']\n"
                   f"model = dict(generator=dict(**{TINY!r}))\n")
    photo = cv2.resize(sample_image('chelsea', 64), (W, H), interpolation=cv2.INTER_AREA)
    img = tmp / 'chelsea.png'
    cv2.imwrite(str(img), photo[..., ::-1])
    mask = np.zeros((H, W, 3), np.uint8)
    mask[10:30, 20:58] = 255
    mask[5, :30] = (0, 0, 1)  # BGR: blue 1 is luma 0 -> kept (MMagic's LoadMask: a hole)
    mask[38:, 40:] = 100  # grey: a hole
    cv2.imwrite(str(tmp / 'mask.png'), mask)
    return dict(tmp=tmp, net=net, ckpt=str(ckpt), cfg=str(cfg), img=str(img), photo=photo,
                mask=str(tmp / 'mask.png'), holes=mask.max(axis=2) > 0)


def _inferencer(setup):
    return MMagicInferencer(model_config=setup['cfg'], model_ckpt=setup['ckpt'], device='cpu',
                            seed=SEED)


def test_infer_with_mask_equals_the_restorer(setup):
    inferencer = _inferencer(setup)
    assert isinstance(inferencer.inferencer.inferencer, DiffIRInpaintingInferencer)
    out = setup['tmp'] / 'out' / 'inpainted.png'
    inferencer.infer(img=setup['img'], mask=setup['mask'], result_out_dir=str(out))
    ours = cv2.imread(str(out), cv2.IMREAD_COLOR)[..., ::-1]
    assert ours.shape == (H, W, 3)
    holes = setup['holes'].copy()
    holes[5, :30] = False  # luma 0
    expected = Restorer(setup['net'], device='cpu', seed=SEED).restore(
        setup['photo'], mask=cv2.imread(setup['mask'], cv2.IMREAD_COLOR)[..., ::-1])
    expected = np.clip(np.rint(np.clip(expected, 0, 1) * 255), 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(ours[~holes], setup['photo'][~holes])
    diff = np.abs(ours.astype(int) - expected.astype(int))
    assert diff.max() <= 1 and (diff > 0).mean() < 0.01
    assert np.abs(ours[holes].astype(int) - setup['photo'][holes].astype(int)).mean() > 1


def test_infer_bad_masks_one_line(setup):
    inferencer = _inferencer(setup)
    small = setup['tmp'] / 'small_mask.png'
    cv2.imwrite(str(small), np.full((H, W - 1), 255, np.uint8))
    cases = [(dict(), ValueError, 'needs a mask'),
             (dict(mask=str(small)), ValueError, r'the mask is 60x45 \(WxH\), the image 61x45'),
             (dict(mask=str(setup['tmp'] / 'missing.png')), FileNotFoundError, 'not found')]
    for kwargs, error, message in cases:
        with pytest.raises(error, match=message) as err:
            inferencer.infer(img=setup['img'], **kwargs)
        assert '\n' not in str(err.value)
