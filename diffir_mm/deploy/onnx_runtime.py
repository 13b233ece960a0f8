"""ONNX Runtime backend: exported graphs behind the interface of ``DiffIRS2Net``.

Two graphs serve inference: the prior graph (``image, x_T -> ipr``) and the DIRformer graph
(``image, ipr -> restored``), written by :func:`~diffir_mm.deploy.onnx_export.export_onnx` with
the sidecar that describes them. :class:`OnnxRuntimeNetwork` exposes them as
``estimate_prior`` / ``restore`` (plus ``task``, ``scale``, ``input_multiple``, ``lq_unshuffle``),
so :func:`~diffir_mm.inference.tiling.restore_tiled` and the
:class:`~diffir_mm.inference.Restorer` run it unchanged: the prior is estimated once from the
whole image (downscaled by the same ``prior_max_side`` rule) and shared by every tile; an untiled
run is prior graph then DIRformer graph on the whole image. Tensors in and out are torch tensors
on the CPU; ONNX Runtime runs on the CPU execution provider.
"""
from __future__ import annotations

import os
from typing import Any, Dict, Optional

import numpy as np
import torch
from torch import nn

from diffir_mm.inference.compilation import resolve_compile
from diffir_mm.inference.precision import normalize_precision
from diffir_mm.inference.restorer import Restorer

from .sidecar import SidecarError, read_sidecar

__all__ = ['OnnxRuntimeNetwork', 'OnnxRestorer']

_RUNTIME_GRAPHS = ('prior', 'dirformer')


def _session(path: str, threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads > 0:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(path, sess_options=options, providers=['CPUExecutionProvider'])


def _check_graph(kind: str, session, meta: Dict[str, Any]) -> None:
    """The graph's inputs/outputs must be those the sidecar promises (names, channels)."""
    graph = meta['graphs'][kind]
    name = os.path.basename(graph['path'])
    inputs = {i.name: i for i in session.get_inputs()}
    outputs = [o.name for o in session.get_outputs()]
    if sorted(inputs) != sorted(graph['inputs']) or outputs != list(graph['outputs']):
        raise SidecarError(f'{name}: graph inputs {sorted(inputs)} / outputs {outputs} differ '
                           f'from the sidecar ({graph["inputs"]} / {graph["outputs"]})')
    expected = {'image': meta['in_channels'], 'x_T': meta['ipr_dim'], 'ipr': meta['ipr_dim']}
    for input_name, node in inputs.items():
        dim = node.shape[1] if len(node.shape) > 1 else None
        if isinstance(dim, int) and dim != expected[input_name]:
            field = 'in_channels' if input_name == 'image' else 'ipr_dim'
            raise SidecarError(f'{name}: input {input_name} has {dim} channels but the sidecar '
                               f'says {field} = {expected[input_name]}')


class OnnxRuntimeNetwork(nn.Module):
    """A stage-2 DiffIR network run by ONNX Runtime (no parameters on the torch side).

    Args:
        model_path: The exported ``X.onnx`` (or its ``X.json`` sidecar).
        threads: Intra-op threads of ONNX Runtime (0: its default).
        task: Expected task; ``None`` accepts the export's.
        scale: Expected SR factor (checked when the task is 'sr' and a task was requested).

    Raises:
        SidecarError: A missing sidecar or graph, or graphs that disagree with the sidecar.
        ValueError: An export of another task or scale than requested.
    """

    def __init__(self, model_path: str, threads: int = 0, task: Optional[str] = None,
                 scale: Optional[int] = None) -> None:
        super().__init__()
        meta = read_sidecar(model_path)
        if task is not None and task != meta['task']:
            raise ValueError(f'{model_path} is a {meta["task"]} export, not {task}')
        if task == 'sr' and scale is not None and int(scale) != int(meta['scale']):
            raise ValueError(f'{model_path} is an SR x{meta["scale"]} export, not x{scale}')
        missing = [kind for kind in _RUNTIME_GRAPHS if kind not in meta['graphs']]
        if missing:
            raise SidecarError(f'{meta["sidecar"]}: the ONNX Runtime backend needs the '
                               f'{" and ".join(missing)} graph(s); export without --graphs')
        self.meta = meta
        self.model_path = os.fspath(model_path)
        self.task = meta['task']
        self.scale = int(meta['scale']) if self.task == 'sr' else 1
        self.input_multiple = int(meta['input_multiple'])
        self.lq_unshuffle = int(meta['prior_unshuffle'])
        self.in_channels = int(meta['in_channels'])
        self.ipr_dim = int(meta['ipr_dim'])
        self._dtype = np.float16 if meta['dtype'] == 'float16' else np.float32
        self._sessions = {}
        for kind in _RUNTIME_GRAPHS:
            session = _session(meta['graphs'][kind]['path'], threads)
            _check_graph(kind, session, meta)
            self._sessions[kind] = session

    @property
    def input_norm(self):
        """``(mean, std)`` on the 0..255 scale, as recorded by the export."""
        norm = self.meta['normalisation']
        return norm['mean'], norm['std']

    def _run(self, kind: str, **feeds: torch.Tensor) -> torch.Tensor:
        arrays = {k: np.ascontiguousarray(v.detach().cpu().numpy(), dtype=self._dtype)
                  for k, v in feeds.items()}
        out = self._sessions[kind].run(None, arrays)[0]
        device = next(iter(feeds.values())).device
        return torch.from_numpy(np.asarray(out, dtype=np.float32)).to(device)

    def _check_input(self, lq: torch.Tensor) -> None:
        if lq.dim() != 4 or lq.shape[1] != self.in_channels:
            raise ValueError(f'expected (N, {self.in_channels}, H, W) input, got '
                             f'{tuple(lq.shape)}')

    def estimate_prior(self, lq: torch.Tensor, noise: Optional[torch.Tensor] = None,
                       generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """IPR (N, 256) of ``lq`` from the start vector ``noise`` (drawn when omitted)."""
        self._check_input(lq)
        if noise is None:
            noise = torch.randn(lq.shape[0], self.ipr_dim, generator=generator)
        if tuple(noise.shape) != (lq.shape[0], self.ipr_dim):
            raise ValueError(f'noise must have shape {(lq.shape[0], self.ipr_dim)}, got '
                             f'{tuple(noise.shape)}')
        return self._run('prior', image=lq, x_T=noise.to(lq.device))

    def restore(self, lq: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
        """DIRformer graph on ``lq`` under ``prior`` (the graph pads and crops)."""
        self._check_input(lq)
        return self._run('dirformer', image=lq, ipr=prior)

    def forward(self, lq: torch.Tensor, noise: Optional[torch.Tensor] = None,
                generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Restore ``lq`` under the prior estimated from ``noise``."""
        return self.restore(lq, self.estimate_prior(lq, noise=noise, generator=generator))


class OnnxRestorer(Restorer):
    """:class:`~diffir_mm.inference.Restorer` over an ONNX export (CPU, the export's dtype).

    Args:
        model_path: ``X.onnx`` of an export.
        threads: ONNX Runtime intra-op threads (0: its default).
        task, scale: Checked against the sidecar when given.
        **kwargs: :class:`Restorer` options (tiling, seed, ``prior_max_side``...); ``device``
            must be the CPU and ``precision`` fp32 or auto (the dtype is chosen at export:
            ``--fp16``).
    """

    def __init__(self, model_path: str, threads: int = 0, task: Optional[str] = None,
                 scale: Optional[int] = None, **kwargs: Any) -> None:
        device = kwargs.pop('device', 'cpu')
        if device not in (None, 'auto') and torch.device(device).type != 'cpu':
            raise ValueError(f'the onnxruntime backend runs on the CPU, not {device!r}')
        if normalize_precision(kwargs.get('precision', 'auto')) not in ('auto', 'fp32'):
            raise ValueError('--precision applies to the pytorch backend; export with --fp16 '
                             'for a half-precision ONNX model')
        kwargs['precision'] = 'fp32'  # the export's dtype
        if resolve_compile(kwargs.pop('compile', 'off'), 'cpu'):
            raise ValueError('compile applies to the pytorch backend')
        network = OnnxRuntimeNetwork(model_path, threads=threads, task=task, scale=scale)
        kwargs.setdefault('input_norm', network.input_norm)
        super().__init__(network, device='cpu', compile=False, **kwargs)

    def describe(self) -> str:
        """One-line summary."""
        net = self.network
        task = f'sr x{net.scale}' if net.task == 'sr' else net.task
        tile = f'tile {self.tile}/{self.tile_overlap}' if self.tile else 'no tiling'
        return (f'DiffIR {task} (ONNX Runtime, {os.path.basename(net.model_path)}, '
                f'{net.meta["dtype"]}), cpu, {tile}')
