"""The page of ``diffir-app``: Gradio components wired to :class:`.service.RestorationService`.

Layout: a model menu (plus a checkpoint upload); the image (upload, drag and drop or paste);
for inpainting models an editor to paint the holes on the image, or a mask upload; an optional
ground truth (PSNR / SSIM); seed, tile size, precision and device; Restore. The result: a
before/after comparison (drag the slider), remarks and scores, and the PNG to download (the mask
too, for inpainting).

Uploads reach the service as the files the browser sent, never as a copy decoded and re-encoded
by Gradio (the events that take them run with ``preprocess=False``; :func:`_uploaded` then does
Gradio's check that a path is an upload): the service reads them as ``diffir-restore`` reads
files, which keeps the download byte-identical to the CLI's, and a file that is not an image is
the service's message, not Pillow's.
Two Restore buttons, one shown at a time: inpainting models' sends the mask editor, the other's
does not (the browser exports the editor's canvas layers for every event that takes it, which a
software-rendered canvas makes slow).
Every handler shows a failure as one message in the page (:func:`_in_page`), escaped (Gradio
renders error messages as HTML), and the server goes on serving.
"""
from __future__ import annotations

import base64
import functools
import html
import os
import sys
import traceback
from typing import Any, Callable, Dict, List, Optional

import cv2
import numpy as np

from diffir_mm.cli.restore.errors import one_line
from diffir_mm.inference.precision import PRECISIONS

from .models import ModelSource
from .offline import import_gradio, offline_theme
from .service import AppError, Outcome, RestorationService, Settings

gr = import_gradio()

__all__ = ['build_page', 'comparison_html']

#: Larger images are not loaded into the mask editor (a browser canvas of that size is slow);
#: a mask file still works.
EDITOR_MAX_PIXELS = 16_000_000

#: Checkpoint files the page accepts (read with ``torch.load(weights_only=True)``).
CHECKPOINT_TYPES = ['.pth', '.pt', '.ckpt']


def _uploaded(value: Any) -> Optional[str]:
    """The server path of an upload, from the raw value (``preprocess=False``) of a file input.

    With ``preprocess=False`` Gradio hands over the browser's value without its own checks, so
    the path is accepted only inside Gradio's upload folder, as Gradio's preprocessing would.
    """
    if not value:
        return None
    path = value.get('path') if isinstance(value, dict) else None
    if not path:
        raise AppError('an upload did not arrive; upload the file again')
    folder = os.path.realpath(gr.utils.get_upload_folder())
    real = os.path.realpath(path)
    if os.path.commonpath([real, folder]) != folder:
        raise AppError('files must be uploaded through the page')
    return real


def _painted_layers(editor: Any) -> List[np.ndarray]:
    """The RGBA layers of the mask editor's raw value (PNG uploads of the browser's canvas)."""
    layers = []
    for value in (editor or {}).get('layers') or []:
        layer = cv2.imread(_uploaded(value), cv2.IMREAD_UNCHANGED)
        if layer is None:
            raise AppError('the painted mask could not be read; clear it and paint again')
        layers.append(layer)
    return layers


def _in_page(fn: Callable) -> Callable:
    """Run a handler; any failure becomes one escaped message in the page (gr.Error).

    ``functools.wraps`` keeps ``fn``'s signature visible: Gradio finds a ``progress=gr.Progress()``
    parameter there and only then feeds it.
    """
    @functools.wraps(fn)
    def handler(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except AppError as err:
            raise gr.Error(html.escape(str(err)), duration=None, print_exception=False) from None
        except gr.Error:
            raise
        except Exception as err:  # noqa: BLE001 - the server keeps serving
            traceback.print_exc(file=sys.stderr)
            raise gr.Error(html.escape(f'{type(err).__name__}: {one_line(err)}'), duration=None,
                           print_exception=False) from None
    return handler


def _data_uri(rgb: np.ndarray) -> str:
    ok, buf = cv2.imencode('.png', np.ascontiguousarray(rgb[..., ::-1]))
    if not ok:  # pragma: no cover - encoding a uint8 RGB array does not fail
        raise AppError('cannot encode the preview')
    return 'data:image/png;base64,' + base64.b64encode(buf.tobytes()).decode('ascii')


def comparison_html(before: np.ndarray, after: np.ndarray) -> str:
    """A before/after slider: ``after`` with ``before`` on top, cut where the slider is."""
    cut = ("this.parentNode.querySelector('.diffir-before').style.clipPath="
           "'inset(0 '+(100-this.value)+'% 0 0)'")
    return f'''<div class="diffir-compare"
     style="position:relative;display:inline-block;max-width:100%;line-height:0;">
<img class="diffir-after" alt="after" src="{_data_uri(after)}"
     style="display:block;max-width:100%;height:auto;">
<img class="diffir-before" alt="before" src="{_data_uri(before)}"
     style="position:absolute;top:0;left:0;width:100%;height:auto;clip-path:inset(0 50% 0 0);">
<span style="position:absolute;top:4px;left:6px;background:#0008;color:#fff;padding:0 4px;">
before</span>
<span style="position:absolute;top:4px;right:6px;background:#0008;color:#fff;padding:0 4px;">
after</span>
<input class="diffir-slider" type="range" min="0" max="100" value="50" step="0.5"
       aria-label="before / after" oninput="{cut}" style="width:100%;margin:6px 0 0;">
</div>'''


def _status(outcome: Outcome) -> str:
    lines = [f'**Done.** {outcome.summary}']
    if outcome.metrics:
        lines.append(' · '.join(f'**{k}** {v:.4f}' if k == 'SSIM' else f'**{k}** {v:.2f} dB'
                                for k, v in outcome.metrics.items())
                     + ' (against the ground truth)')
    lines += [f'- note: {html.escape(n)}' for n in outcome.notes]
    return '\n\n'.join(lines)


def build_page(service: RestorationService, models: Dict[str, ModelSource],
               concurrency: int = 1) -> 'gr.Blocks':
    """The Gradio page.

    Args:
        service: Runs the restorations.
        models: Menu label -> model (the first is selected; uploads are added to it).
        concurrency: Restorations Gradio's queue lets run at once (the service then allows
            ``per_device`` of them on each device).
    """
    devices = service.devices
    labels = list(models)

    def source_of(label: Optional[str]) -> ModelSource:
        if not label or label not in models:
            raise AppError('choose a model (or upload a checkpoint) first')
        return models[label]

    @_in_page
    def add_checkpoint(path: Optional[str]):
        if not path:
            return gr.update()
        label = f'uploaded: {os.path.basename(path)}'
        models[label] = ModelSource(label, checkpoint=path)
        return gr.update(choices=list(models), value=label)

    def editor_value(task: str, image: Optional[str]):
        if task != 'inpaint' or not image:
            return None
        layers = service.editor_layers(image, EDITOR_MAX_PIXELS)
        if layers is None:
            gr.Warning('this image is too large to paint on in the browser: upload a mask')
            return None
        background, blank = layers
        return {'background': background, 'layers': [blank], 'composite': None}

    def settings_of(seed: Any, tile: Any, precision: str, device: str) -> Settings:
        return Settings(seed=int(seed or 0), tile=int(tile or 0), precision=precision,
                        device=device)

    @_in_page
    def choose_model(label: Optional[str], image: Any, tile: Any, precision: str, device: str,
                     progress=gr.Progress()):
        if not label:
            return (gr.update(visible=False), gr.update(visible=False), 'Choose a model.',
                    gr.update(visible=True), gr.update(visible=False))
        progress(0.0, desc=f'loading {label}')
        restorer = service.load(source_of(label), settings_of(0, tile, precision, device))
        inpaint = restorer.task == 'inpaint'
        hint = ' Paint the holes on the image (or upload a mask), then press Restore.' \
            if inpaint else ' Upload an image and press Restore.'
        return (gr.update(visible=inpaint, value=editor_value(restorer.task, _uploaded(image))),
                gr.update(visible=inpaint),
                f'Model **{html.escape(label)}**: {restorer.describe()}.{hint}',
                gr.update(visible=not inpaint), gr.update(visible=inpaint))

    @_in_page
    def new_image(label: Optional[str], image: Any, tile: Any, precision: str, device: str):
        if not label or not image:
            return gr.update(value=None)
        restorer = service.load(source_of(label), settings_of(0, tile, precision, device))
        return gr.update(value=editor_value(restorer.task, _uploaded(image)))

    @_in_page
    def restore_inpaint(label, image, editor, mask_file, truth, seed, tile, precision, device,
                        progress=gr.Progress()):
        settings = settings_of(seed, tile, precision, device)

        def report(fraction: float, message: str) -> None:
            progress(fraction, desc=message)

        outcome = service.run(source_of(label), _uploaded(image), settings,
                              painted=_painted_layers(editor), mask_file=_uploaded(mask_file),
                              ground_truth=_uploaded(truth), progress=report)
        return (_status(outcome), comparison_html(outcome.before, outcome.after),
                gr.update(value=outcome.png, visible=True),
                gr.update(value=outcome.mask_png, visible=outcome.mask_png is not None))

    @_in_page
    def restore(label, image, truth, seed, tile, precision, device, progress=gr.Progress()):
        return restore_inpaint(label, image, None, None, truth, seed, tile, precision, device,
                               progress=progress)

    with gr.Blocks(title='DiffIR', theme=offline_theme(), analytics_enabled=False) as page:
        gr.Markdown('## DiffIR: restore your own photos\n'
                    'Efficient Diffusion Model for Image Restoration (ICCV 2023), as run by '
                    '`diffir-restore`: the PNG you download is the file the command writes '
                    'with the same model, seed and settings.')
        with gr.Row():
            model = gr.Dropdown(labels, value=labels[0] if labels else None, label='Model',
                                elem_id='model')
            with gr.Accordion('…or upload a checkpoint (.pth / .ckpt)', open=not labels):
                upload = gr.File(label='Checkpoint', file_types=CHECKPOINT_TYPES,
                                 type='filepath', elem_id='checkpoint-upload', height=100)
        with gr.Row():
            with gr.Column():
                image = gr.Image(label='Image (drop, upload or paste)', type='filepath',
                                 image_mode=None, sources=['upload', 'clipboard'],
                                 elem_id='image')
                editor = gr.ImageEditor(
                    label='Paint the holes (brush)', type='numpy', elem_id='mask-editor',
                    sources=(), transforms=(), layers=False, visible=False,
                    brush=gr.Brush(colors=['#ff3b30'], color_mode='fixed', default_size=12))
                mask_file = gr.Image(label='…or upload a mask (non-zero = hole)',
                                     type='filepath', image_mode=None, elem_id='mask-file',
                                     sources=['upload', 'clipboard'], visible=False)
                with gr.Accordion('Score against a ground truth (optional)', open=False):
                    truth = gr.Image(label='Ground truth', type='filepath', image_mode=None,
                                     sources=['upload', 'clipboard'], elem_id='ground-truth')
                with gr.Row():
                    seed = gr.Number(0, label='Seed', precision=0, elem_id='seed')
                    tile = gr.Number(0, label='Tile size (0 = whole image)', precision=0,
                                     minimum=0, elem_id='tile')
                with gr.Row():
                    precision = gr.Radio(list(PRECISIONS), value='auto',
                                         label='Precision', elem_id='precision')
                    device = gr.Radio(devices, value=devices[0], label='Device',
                                      elem_id='device')
                run = gr.Button('Restore', variant='primary', elem_id='restore')
                run_inpaint = gr.Button('Restore', variant='primary', visible=False,
                                        elem_id='restore-inpaint')
            with gr.Column():
                status = gr.Markdown('Choose a model.', elem_id='status')
                compare = gr.HTML(elem_id='compare')
                download = gr.DownloadButton('Download the PNG', visible=False,
                                             elem_id='download')
                download_mask = gr.DownloadButton('Download the mask', visible=False,
                                                  elem_id='download-mask')

        upload.upload(add_checkpoint, upload, model, show_api=False)
        # preprocess=False: the uploads as stored (see the module notes)
        model_events = dict(fn=choose_model, inputs=[model, image, tile, precision, device],
                            outputs=[editor, mask_file, status, run, run_inpaint],
                            preprocess=False, show_api=False)
        model.change(**model_events)
        device.change(**model_events)
        page.load(**model_events)
        image.change(new_image, [model, image, tile, precision, device], editor,
                     preprocess=False, show_api=False)
        results = [status, compare, download, download_mask]
        settings = [seed, tile, precision, device]
        for button, fn, inputs in [
                (run, restore, [model, image, truth, *settings]),
                (run_inpaint, restore_inpaint, [model, image, editor, mask_file, truth,
                                                *settings])]:
            button.click(lambda: ('Restoring…', '', gr.update(visible=False),
                                  gr.update(visible=False)),
                         None, results, queue=False, show_api=False).then(
                fn, inputs, results, concurrency_limit=concurrency, preprocess=False,
                show_api=False)
    return page
