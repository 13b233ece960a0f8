"""The demo's scores (the config's own metrics) and its comparison figure."""
from __future__ import annotations

import os
from typing import Dict, List, Optional, Tuple

import cv2
import numpy as np

from diffir_mm.utils.atomic import write_bytes_atomic

__all__ = ['scores', 'figure']


def scores(cfg, gt: np.ndarray, pred: np.ndarray,
           mask: Optional[np.ndarray] = None) -> Dict[str, float]:
    """The config's test metrics on one RGB pair, fed as the test loop feeds them (CHW BGR; the
    hole mask, non-zero = hole, as ``data_samples.mask``)."""
    import torch
    from mmagic.registry import METRICS

    def chw_bgr(img: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(img[..., ::-1].transpose(2, 0, 1))).float()

    sample = dict(gt_img=chw_bgr(gt), output=dict(pred_img=chw_bgr(pred)))
    if mask is not None:
        sample['mask'] = torch.from_numpy((mask > 0).astype(np.float32))[None]
    out = {}
    for metric_cfg in cfg.test_evaluator:
        metric = METRICS.build(metric_cfg)
        metric.process([], [dict(sample)])
        out.update(metric.compute_metrics(metric.results))
    return {k: float(v) for k, v in out.items()}


def figure(path: str, panels: List[Tuple[str, np.ndarray, str]]) -> List[dict]:
    """Panels (label, image, centre 3x; smaller images repeated to GT size); returns the boxes."""
    h, w = panels[-1][1].shape[:2]
    ch, cw, bar, gap = h // 3, w // 3, 44, 8
    top, left = (h - ch) // 2, (w - cw) // 2
    canvas = np.full((bar + h + gap + 3 * ch, len(panels) * (w + gap) - gap, 3), 255, np.uint8)
    layout = []
    for i, (label, img, file) in enumerate(panels):
        x, img = i * (w + gap), img.repeat(h // img.shape[0], 0).repeat(w // img.shape[1], 1)
        for row, text in enumerate(label.split('\n')):
            cv2.putText(canvas, text, (x + 4, 18 + 20 * row), cv2.FONT_HERSHEY_SIMPLEX, 0.55,
                        (0, 0, 0), 1, cv2.LINE_AA)
        canvas[bar:bar + h, x:x + w] = img
        zoom = img[top:top + ch, left:left + cw].repeat(3, 0).repeat(3, 1)
        canvas[bar + h + gap:, x:x + 3 * cw] = zoom
        layout.append(dict(label=label, file=file, box=[bar, x, h, w]))
    encoded = cv2.imencode(os.path.splitext(path)[1], canvas[..., ::-1])[1]
    write_bytes_atomic(path, encoded.tobytes())
    return layout
