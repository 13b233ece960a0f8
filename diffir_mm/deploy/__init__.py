"""Deployment of stage-2 DiffIR networks: ONNX export and an ONNX Runtime backend.

* :mod:`.onnx_export` -- the exported graphs (``image`` + ``x_T`` in, ``restored`` out; padding
  inside the graph, no random operator) and :func:`export_onnx`;
* :mod:`.sidecar` -- the JSON file written beside the model that the runtime reads;
* :mod:`.onnx_runtime` -- :class:`OnnxRuntimeNetwork`, a drop-in for ``DiffIRS2Net`` in the
  :class:`~diffir_mm.inference.Restorer` and its tiling (two graphs: prior, DIRformer);
* :mod:`.export_cli` -- ``tools/export_onnx.py``.

``onnx`` / ``onnxruntime`` are optional (``pip install diffir-mm[onnx]``) and imported only by
the functions that need them.
"""
from .sidecar import SidecarError, read_sidecar, sidecar_path

__all__ = ['SidecarError', 'read_sidecar', 'sidecar_path']
