"""The JSON sidecar of an exported model: what the ONNX Runtime side needs besides the graphs.

``tools/export_onnx.py OUT.onnx`` writes ``OUT.json`` next to the graphs. It records the task,
the SR scale, the channel counts, the input multiple the graphs pad to, the input normalisation
(``network input = (pixel_0_255 - mean) / std``), the opset, the dtype and, per graph, its file
(relative to the sidecar) with its input and output names. :func:`read_sidecar` checks every
field the runtime relies on and raises :class:`SidecarError` with one line naming the field.
"""
from __future__ import annotations

import json
import os
from typing import Any, Dict

from diffir_mm.utils.atomic import write_bytes_atomic

__all__ = ['FORMAT', 'GRAPH_IO', 'SidecarError', 'sidecar_path', 'write_sidecar', 'read_sidecar']

#: ``format`` value of our sidecars.
FORMAT = 'diffir-mm-onnx'
#: Input and output names of each graph kind.
GRAPH_IO: Dict[str, Dict[str, list]] = {
    'full': dict(inputs=['image', 'x_T'], outputs=['restored']),
    'prior': dict(inputs=['image', 'x_T'], outputs=['ipr']),
    'dirformer': dict(inputs=['image', 'ipr'], outputs=['restored']),
}
_REQUIRED = ('task', 'scale', 'in_channels', 'out_channels', 'ipr_dim', 'input_multiple',
             'prior_unshuffle', 'normalisation', 'opset', 'dtype', 'graphs')


class SidecarError(ValueError):
    """A missing, unreadable or inconsistent sidecar (the message is one line)."""


def sidecar_path(model_path: str) -> str:
    """``model.onnx`` -> ``model.json`` (the sidecar of an export)."""
    stem, ext = os.path.splitext(os.fspath(model_path))
    return (stem if ext.lower() == '.onnx' else os.fspath(model_path)) + '.json'


def write_sidecar(path: str, meta: Dict[str, Any]) -> str:
    """Write ``meta`` (with the format marker) as indented JSON, atomically; returns ``path``."""
    data = dict(format=FORMAT, version=1, **meta)
    write_bytes_atomic(path, (json.dumps(data, indent=2) + '\n').encode('utf-8'))
    return path


def read_sidecar(model_path: str) -> Dict[str, Any]:
    """Read and check the sidecar of ``model_path`` (the ``.onnx`` file or the ``.json`` itself).

    Graph file names are resolved to absolute paths (``meta['graphs'][kind]['path']``).

    Raises:
        SidecarError: No sidecar, invalid JSON, a missing field, or a graph file that is absent.
    """
    model_path = os.fspath(model_path)
    path = model_path if model_path.lower().endswith('.json') else sidecar_path(model_path)
    if not os.path.isfile(model_path):
        raise SidecarError(f'ONNX model not found: {model_path}')
    if not os.path.isfile(path):
        raise SidecarError(f'no sidecar {path} beside {model_path} (export with '
                           'tools/export_onnx.py, which writes it)')
    try:
        with open(path, encoding='utf-8') as fh:
            meta = json.load(fh)
    except (OSError, ValueError) as err:
        raise SidecarError(f'sidecar {path} is not valid JSON: {err}') from None
    if not isinstance(meta, dict) or meta.get('format') != FORMAT:
        raise SidecarError(f'sidecar {path}: "format" must be {FORMAT!r}')
    missing = [key for key in _REQUIRED if key not in meta]
    if missing:
        raise SidecarError(f'sidecar {path}: missing field(s) {", ".join(missing)}')
    if meta['task'] not in ('deblur', 'sr', 'inpaint'):
        raise SidecarError(f'sidecar {path}: unknown task {meta["task"]!r}')
    folder = os.path.dirname(os.path.abspath(path))
    graphs = meta['graphs']
    if not isinstance(graphs, dict):
        raise SidecarError(f'sidecar {path}: "graphs" must be an object')
    for kind, graph in graphs.items():
        if kind not in GRAPH_IO or not isinstance(graph, dict) or 'file' not in graph:
            raise SidecarError(f'sidecar {path}: bad entry graphs.{kind}')
        graph['path'] = os.path.join(folder, graph['file'])
        if not os.path.isfile(graph['path']):
            raise SidecarError(f'sidecar {path}: graphs.{kind} file {graph["path"]} not found')
    meta['sidecar'] = path
    return meta
