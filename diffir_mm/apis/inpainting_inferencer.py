"""MMagic's inpainting inferencer for DiffIR, with the official predictor's input preparation.

``MMagicInferencer('diffir', model_setting=<inpainting setting>, model_ckpt=...)`` (or any
DiffIR inpainting config) serves :class:`DiffIRInpaintingInferencer`, called like MMagic's
``InpaintingInferencer``: ``infer(img=..., mask=..., result_out_dir=...)``. It differs from
MMagic's in how the inputs are prepared, which here is what the official ``bin/predict.py`` does
and what ``diffir-restore --mask`` does (:mod:`diffir_mm.inference.inpainting`):

* the image is read as RGB (MMagic's reads BGR), the mask's holes are its non-zero luma (MMagic's
  ``LoadMask`` reads the first, blue, channel of a colour mask);
* image and mask are padded symmetrically to a multiple of 8 and the result is cropped back
  (MMagic's pads nothing; the network would reflect-pad);
* a missing mask, an unreadable file and a mask of another size are one-line ``ValueError`` /
  ``FileNotFoundError`` s.

``img`` and ``mask`` are file paths or arrays (``img``: (H, W, 3) BGR like ``mmcv.imread``;
``mask``: (H, W) or (H, W, 3) BGR). The model is the config's editor (``DiffIRInpaintS2``), run
through its data preprocessor and ``predict`` as in ``tools/test.py``. The stage-2 start vector
``x_T`` comes from torch's global generator, which the inferencer seeds once (``seed``).
"""
from __future__ import annotations

import copy
import os
from typing import Dict, List, Optional, Union

import numpy as np
import torch
from mmagic.apis.inferencers.inpainting_inferencer import InpaintingInferencer
from mmagic.structures import DataSample

from diffir_mm.inference.inpainting import MODULO, holes_from_record, pad_symmetric
from diffir_mm.inference.io import ImageIOError, ImageRecord, read_image

__all__ = ['DiffIRInpaintingInferencer', 'DIFFIR_INPAINTING_TASK']

#: The task name our metafile / config dispatch gives inpainting settings.
DIFFIR_INPAINTING_TASK = 'DiffIR Inpainting'

Source = Union[str, os.PathLike, np.ndarray]


def _record(source: Optional[Source], what: str) -> ImageRecord:
    if source is None:
        raise ValueError(f'DiffIR inpainting needs {what}: infer(img=..., mask=...) with an '
                         'image and its mask (non-zero = hole)')
    if isinstance(source, np.ndarray):
        return ImageRecord.from_array(source, bgr=True)
    path = os.fspath(source)
    if not os.path.isfile(path):
        raise FileNotFoundError(f'{what} not found: {path}')
    try:
        return read_image(path)
    except ImageIOError as err:
        raise ValueError(f'{what} {path}: {err}') from None


class DiffIRInpaintingInferencer(InpaintingInferencer):
    """``infer(img=..., mask=...)`` with the official pipeline's padding and hole rule."""

    def _init_model(self, cfg, ckpt: Optional[str], device: str):
        """Build the editor without its training-only file: the ResNet-PL loss weights."""
        cfg = copy.deepcopy(cfg)
        if 'resnet_pl_loss' in cfg.model:
            cfg.model.resnet_pl_loss = None
        return super()._init_model(cfg, ckpt, device)

    def preprocess(self, img: Source, mask: Optional[Source] = None) -> Dict:
        """Pack one image and its mask for the editor (padded to 8, symmetric).

        Args:
            img: Image path or (H, W, 3) BGR array.
            mask: Mask path or array; every non-zero (luma) value is a hole.

        Returns:
            ``dict(inputs=[...], data_samples=[...])`` for the model's data preprocessor.
        """
        image = _record(img, 'an image')
        holes = holes_from_record(_record(mask, 'a mask'))
        h, w = image.size
        if holes.shape != (h, w):
            raise ValueError(f'the mask is {holes.shape[1]}x{holes.shape[0]} (WxH), the image '
                             f'{w}x{h}')
        # back to the file's integers (exact for 8-bit), the 0-255 scale of MMagic's inputs
        unit = image.rgb * 255.0
        values = np.rint(unit) if image.dtype == np.uint8 else unit
        rgb = torch.from_numpy(np.ascontiguousarray(values, np.float32)).permute(2, 0, 1)
        hole = torch.from_numpy(holes.astype(np.float32))[None]
        rgb, hole = pad_symmetric(rgb, MODULO), pad_symmetric(hole, MODULO)
        sample = DataSample(gt_img=rgb, mask=hole,
                            metainfo=dict(gt_channel_order='RGB', img_channel_order='RGB',
                                          ori_size=(h, w)))
        self._sizes = [(h, w)]
        return dict(inputs=[rgb * (1 - hole)], data_samples=[sample])

    def forward(self, inputs: Dict) -> List[DataSample]:
        """Run the editor's ``predict`` and crop its images back to the input size."""
        preds = super().forward(inputs)
        preds = preds if isinstance(preds, list) else [preds]
        for pred, (h, w) in zip(preds, self._sizes):
            for key in ('fake_res', 'fake_img', 'pred_img'):
                value = pred.output.get(key) if 'output' in pred else pred.get(key)
                if value is not None:
                    target = pred.output if 'output' in pred else pred
                    target.set_data({key: value[..., :h, :w]})
        return preds
