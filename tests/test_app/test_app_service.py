"""diffir_mm.app.service: the app's PNG equals diffir-restore's file; bad input is one line."""
import os
import re
import threading
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
from helpers import file_bytes, sample_image, write

from diffir_mm.app.models import ModelCache, ModelSource
from diffir_mm.app.service import (TILE_SUGGESTIONS, AppError, RestorationService, Settings,
                                   painted_holes)
from diffir_mm.cli.restore import main as restore_cli
from diffir_mm.inference.memory import untiled_peak_bytes


def _service(tmp_path, **kwargs):
    return RestorationService(ModelCache(), str(tmp_path / 'results'), ['cpu'], **kwargs)


def _cli(tmp_path, image, ckpt, settings, *extra):
    out = tmp_path / 'cli'
    rc = restore_cli([str(image), '-o', str(out), '--checkpoint', str(ckpt), '--ext', 'png',
                      '--seed', str(settings.seed), '--tile', str(settings.tile),
                      '--precision', settings.precision, '--device', settings.device,
                      '--no-progress', '-q', *map(str, extra)])
    assert rc == 0
    return out / (os.path.splitext(os.path.basename(image))[0] + '.png')


@pytest.fixture
def inputs(tmp_path, photo, rng):
    """The photo, and the layouts the CLI keeps: grayscale, RGBA, 16-bit, an odd size (JPEG)."""
    img = cv2.imread(photo)
    return {
        'photo': photo,
        'gray': write(tmp_path / 'gray.png', cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)),
        'rgba': write(tmp_path / 'rgba.png', np.dstack([img, rng.integers(0, 256, (64, 64),
                                                                           dtype=np.uint8)])),
        'deep': write(tmp_path / 'deep.png', img.astype(np.uint16) * 257),
        'odd': write(tmp_path / 'odd.jpg', img[:45, :59]),
    }


@pytest.mark.parametrize('model,name,settings', [
    ('deblur', 'photo', Settings(seed=0)),
    ('deblur', 'gray', Settings(seed=3)),
    ('deblur', 'rgba', Settings(seed=0)),
    ('deblur', 'deep', Settings(seed=0)),
    ('deblur', 'odd', Settings(seed=1, tile=40)),  # tiled, with padding
    ('sr_x2', 'photo', Settings(seed=5, tile=48)),
])
def test_download_is_byte_identical_to_the_cli(tmp_path, app_ckpts, inputs, model, name,
                                               settings):
    source = ModelSource(model, checkpoint=str(app_ckpts / f'{model}.pth'))
    outcome = _service(tmp_path).run(source, inputs[name], settings)
    assert file_bytes(outcome.png) == file_bytes(_cli(tmp_path, inputs[name],
                                                      source.checkpoint, settings))
    scale = 2 if model == 'sr_x2' else 1
    h, w = cv2.imread(inputs[name], cv2.IMREAD_UNCHANGED).shape[:2]
    assert outcome.after.shape == outcome.before.shape == (h * scale, w * scale, 3)
    assert outcome.mask_png is None and not outcome.metrics


def test_inpainting_changes_only_the_painted_pixels(tmp_path, app_ckpts, photo):
    source = ModelSource('inpaint', checkpoint=str(app_ckpts / 'inpaint.pth'))
    layer = np.zeros((64, 64, 4), np.uint8)
    cv2.line(layer, (10, 20), (50, 30), (255, 59, 48, 255), thickness=6)  # a brush stroke
    settings = Settings(seed=2)
    outcome = _service(tmp_path).run(source, photo, settings, painted=[layer])
    holes = cv2.imread(outcome.mask_png, cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(holes > 0, layer[..., 3] > 0)
    before, after = cv2.imread(photo), cv2.imread(outcome.png)
    np.testing.assert_array_equal(after[holes == 0], before[holes == 0])
    changed = np.any(after != before, axis=2)[holes > 0].mean()
    assert changed > 0.9, changed
    # the mask the page offers reproduces the download with diffir-restore --mask
    cli = _cli(tmp_path, photo, source.checkpoint, settings, '--mask', outcome.mask_png)
    assert file_bytes(outcome.png) == file_bytes(cli)


def test_painted_and_uploaded_masks_combine(tmp_path, app_ckpts, photo):
    source = ModelSource('inpaint', checkpoint=str(app_ckpts / 'inpaint.pth'))
    layer = np.zeros((64, 64, 4), np.uint8)
    layer[4:8, 4:8, 3] = 255
    uploaded = np.zeros((64, 64), np.uint8)
    uploaded[40:50, 30:60] = 1  # every non-zero value is a hole (official rule)
    mask_file = write(tmp_path / 'mask.png', uploaded)
    outcome = _service(tmp_path).run(source, photo, Settings(), painted=[layer],
                                     mask_file=mask_file)
    holes = cv2.imread(outcome.mask_png, cv2.IMREAD_UNCHANGED) > 0
    np.testing.assert_array_equal(holes, (layer[..., 3] > 0) | (uploaded > 0))


@pytest.mark.parametrize('model,metrics', [
    ('deblur', [dict(type='PSNR', crop_border=0), dict(type='SSIM', crop_border=0)]),
    ('sr_x2', [dict(type='PSNR', crop_border=4, convert_to='Y'),
               dict(type='SSIM', crop_border=4, convert_to='Y')]),
])
def test_ground_truth_is_scored_as_the_configs_score(tmp_path, app_ckpts, model, metrics):
    from diffir_mm.demo.report import scores
    gt_rgb = sample_image('chelsea', 64)
    lq_rgb = gt_rgb if model == 'deblur' else cv2.resize(gt_rgb, (32, 32),
                                                         interpolation=cv2.INTER_AREA)
    gt, lq = write(tmp_path / 'gt.png', gt_rgb[..., ::-1]), write(tmp_path / 'lq.png',
                                                                  lq_rgb[..., ::-1])
    source = ModelSource(model, checkpoint=str(app_ckpts / f'{model}.pth'))
    outcome = _service(tmp_path).run(source, lq, Settings(), ground_truth=gt)
    restored = cv2.imread(outcome.png)[..., ::-1]
    expected = scores(SimpleNamespace(test_evaluator=metrics), gt_rgb, restored)
    assert outcome.metrics.keys() == expected.keys() == {'PSNR', 'SSIM'}
    for key, value in expected.items():
        assert outcome.metrics[key] == pytest.approx(value, rel=1e-9), key


def test_painted_holes_reads_alpha():
    a = np.zeros((4, 5, 4), np.uint8)
    b = np.zeros((4, 5, 4), np.uint8)
    a[1, 2, 3], b[3, 4, 3] = 1, 200
    holes = painted_holes([a, b])
    assert holes.shape == (4, 5) and holes.sum() == 2 and holes[1, 2] and holes[3, 4]
    assert painted_holes([]) is None
    with pytest.raises(AppError, match='could not be read'):
        painted_holes([np.zeros((4, 5, 3), np.uint8)])


def test_bad_requests_are_one_line_errors(tmp_path, app_ckpts, photo):
    deblur = ModelSource('deblur', checkpoint=str(app_ckpts / 'deblur.pth'))
    inpaint = ModelSource('inpaint', checkpoint=str(app_ckpts / 'inpaint.pth'))
    service = _service(tmp_path)
    text = tmp_path / 'notes.txt'
    text.write_text('not an image')
    fake = tmp_path / 'fake.png'
    fake.write_bytes(b'\x89PNG\r\n\x1a\n' + b'\0' * 64)
    small_mask = write(tmp_path / 'small.png', np.full((32, 32), 255, np.uint8))
    cases = [
        (deblur, str(text), {}, 'image notes.txt: cannot decode image'),
        (deblur, str(fake), {}, 'image fake.png: cannot decode image'),
        (deblur, None, {}, 'upload an image first'),
        (inpaint, photo, {'mask_file': small_mask}, 'the mask is 32x32, the image 64x64'),
        (inpaint, photo, {'painted': [np.zeros((64, 64, 4), np.uint8)]}, 'inpainting needs holes'),
        (inpaint, photo, {'painted': [np.full((60, 64, 4), 255, np.uint8)]},
         'the painted mask is 64x60, the image 64x64'),
        (deblur, photo, {'ground_truth': small_mask}, 'the ground truth is 32x32'),
        (ModelSource('gone', checkpoint=str(tmp_path / 'gone.pth')), photo, {},
         'cannot load gone: checkpoint not found'),
    ]
    for source, image, extra, message in cases:
        with pytest.raises(AppError, match=message) as err:
            service.run(source, image, Settings(), **extra)
        assert '\n' not in str(err.value)
    for settings, message in [(Settings(tile=-1), 'tile size must be 0'),
                              (Settings(tile=32), 'must exceed the tile overlap'),
                              (Settings(precision='fp8'), 'precision must be one of'),
                              (Settings(device='cuda:7'), "device 'cuda:7' is not offered")]:
        with pytest.raises(AppError, match=message):
            service.run(deblur, photo, settings)
    assert os.path.isfile(service.run(deblur, photo, Settings()).png)  # still serving


def test_image_too_large_for_one_piece_asks_for_tiles(tmp_path, app_ckpts, monkeypatch):
    big = write(tmp_path / 'big.png', np.full((5000, 8000), 128, np.uint8))  # 40 MP, 40 kB
    source = ModelSource('deblur', checkpoint=str(app_ckpts / 'deblur.pth'))
    service = _service(tmp_path, memory_budget=4 * 2 ** 30)

    def no_decoding(path):
        raise AssertionError('decoded: the size is in the header')

    monkeypatch.setattr('diffir_mm.app.service.read_image', no_decoding)
    with pytest.raises(AppError) as err:
        service.run(source, big, Settings())
    message = str(err.value)
    assert message.startswith('the image is 8000x5000 (40.0 MP): restoring it in one piece '
                              'needs about'), message
    advice = re.search(r'cpu has 4\.0 GB free; set a tile size of (\d+) or less', message)
    assert advice, message
    # the largest suggested tile whose own run takes at most half the budget
    net, tile = service.load(source, Settings()).network, int(advice.group(1))
    assert untiled_peak_bytes(net, tile, tile) <= 2 * 2 ** 30
    larger = [t for t in TILE_SUGGESTIONS if t > tile]
    assert all(untiled_peak_bytes(net, t, t) > 2 * 2 ** 30 for t in larger)
    tight = _service(tmp_path, memory_budget=2 ** 28)  # 256 MB: not even the decoded pixels
    with pytest.raises(AppError, match='its pixels alone need'):
        tight.run(source, big, Settings(tile=512))


def test_results_folder_keeps_the_newest(tmp_path, app_ckpts, photo):
    source = ModelSource('deblur', checkpoint=str(app_ckpts / 'deblur.pth'))
    service = _service(tmp_path, keep=2)
    pngs = [service.run(source, photo, Settings(seed=s)).png for s in range(3)]
    assert not os.path.exists(pngs[0]) and all(os.path.isfile(p) for p in pngs[1:])
    assert len(os.listdir(tmp_path / 'results')) == 2


@pytest.mark.parametrize('per_device', [1, 2])
def test_one_restoration_at_a_time_per_device(tmp_path, app_ckpts, photo, per_device):
    source = ModelSource('deblur', checkpoint=str(app_ckpts / 'deblur.pth'))
    service = _service(tmp_path, per_device=per_device)
    service.load(source, Settings())
    first_holds, second_arrived, messages = threading.Event(), threading.Event(), []

    def first_progress(fraction, message):
        if message.startswith('restoring'):  # holding the device: let the second one come
            first_holds.set()
            second_arrived.wait(timeout=60)

    def second_progress(fraction, message):
        messages.append(message)
        if message.startswith(('waiting', 'restoring')):
            second_arrived.set()

    first = threading.Thread(target=service.run, args=(source, photo, Settings()),
                             kwargs={'progress': first_progress})
    first.start()
    assert first_holds.wait(timeout=120)
    service.run(source, photo, Settings(seed=1), progress=second_progress)
    first.join()
    waited = any(m.startswith('waiting for cpu') for m in messages)
    assert waited == (per_device == 1), messages


def test_progress_follows_the_tiles(tmp_path, app_ckpts, photo):
    source = ModelSource('deblur', checkpoint=str(app_ckpts / 'deblur.pth'))
    seen = []
    _service(tmp_path).run(source, photo, Settings(tile=40),
                           progress=lambda fraction, message: seen.append((fraction, message)))
    tiles = [m for _, m in seen if m.startswith('restoring: tile')]
    n = len(tiles)  # 64 px in 40-px tiles overlapping by 32: 4 x 4
    assert n == 16 and tiles == [f'restoring: tile {k}/{n}' for k in range(1, n + 1)]
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] < 1
