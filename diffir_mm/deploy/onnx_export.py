"""ONNX export of a stage-2 DiffIR network (CPEN_S2 + the 4 reverse steps + DIRformer).

What the graphs are
    The start vector of the reverse diffusion is a graph **input** (``x_T``, (N, 256), standard
    normal), so the graph holds no random operator: the same ``image`` and ``x_T`` give the same
    ``restored`` in PyTorch and in ONNX Runtime. Batch, height and width are dynamic. The padding
    to the network's multiple is done **inside the graph** exactly as ``DiffIRS2Net`` does it
    (reflection on the right/bottom, edge replication for images smaller than the padding),
    written as an index gather whose mode is chosen from the shapes at run time; the output is
    cropped back to ``scale * (H, W)``. The network is traced under ``torch.no_grad()``, i.e. its
    inference path (the DIRformer's folded LayerNorm/modulation convolutions).

Three graphs from one trace
    One trace of :class:`Stage2Graph` (outputs ``restored`` and ``ipr``) is cut with
    :func:`onnx.utils.extract_model` into

    * ``OUT.onnx`` -- ``image, x_T -> restored``: the whole network, for deployment;
    * ``OUT.prior.onnx`` -- ``image, x_T -> ipr``: the prior network (CPEN_S2 + diffusion);
    * ``OUT.dirformer.onnx`` -- ``image, ipr -> restored``: the DIRformer under a given prior.

    The ONNX Runtime backend (:mod:`.onnx_runtime`) runs the last two, so tiles share one prior
    estimated from the whole image as in the PyTorch backend. The sidecar ``OUT.json``
    (:mod:`.sidecar`) describes all three.

Exporters
    ``exporter='torchscript'`` (default) is torch's tracing exporter, deprecated since torch 2.9
    but still shipped with 2.14; it traces a tiny model in seconds. ``exporter='dynamo'`` uses
    the ``torch.export``-based exporter (needs ``onnxscript``), much slower to export (symbolic
    shape tracing); both give the same results and are checked the same way.
"""
from __future__ import annotations

import os
import tempfile
import time
from typing import Any, Dict, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from diffir_mm.archs import IPR_DIM
from diffir_mm.utils.atomic import replace_atomic

from .sidecar import GRAPH_IO, write_sidecar

__all__ = ['EXPORTERS', 'RANDOM_OPS', 'Stage2Graph', 'pad_in_graph', 'graph_paths',
           'random_ops', 'network_channels', 'export_onnx']

#: Supported exporters (see the module notes).
EXPORTERS = ('torchscript', 'dynamo')
#: ONNX operators that draw random numbers; none may appear in an exported graph.
RANDOM_OPS = frozenset({'RandomNormal', 'RandomNormalLike', 'RandomUniform', 'RandomUniformLike',
                        'Multinomial', 'Bernoulli'})
_DEFAULT_OPSET = {'torchscript': 17, 'dynamo': 18}


def _pad_indices(length, multiple: int, device: torch.device) -> Tuple[torch.Tensor, torch.Tensor]:
    """Source rows of a right/bottom padding of ``length`` to a multiple: (reflect, edge)."""
    padded = (length + multiple - 1) // multiple * multiple
    index = torch.arange(padded, device=device)
    reflect = torch.where(index < length, index, 2 * (length - 1) - index)
    edge = index.clamp(max=length - 1)
    return reflect, edge


def pad_in_graph(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """:func:`~diffir_mm.archs.pad_to_multiple` written with shape-independent tensor ops.

    Reflection when both paddings are smaller than their sides (no reflected index is negative),
    edge replication otherwise -- the rule of ``pad_to_multiple``, decided inside the graph.
    """
    h, w = x.shape[-2:]
    reflect_y, edge_y = _pad_indices(h, multiple, x.device)
    reflect_x, edge_x = _pad_indices(w, multiple, x.device)
    use_reflect = (reflect_y.min() >= 0) & (reflect_x.min() >= 0)
    rows = torch.where(use_reflect, reflect_y, edge_y)
    cols = torch.where(use_reflect, reflect_x, edge_x)
    return x.index_select(2, rows).index_select(3, cols)


class Stage2Graph(nn.Module):
    """The traced module: ``(image, x_T) -> (restored, ipr)`` of a ``DiffIRS2Net``.

    Uses the network's parts (``cpen``, ``denoiser``, ``diffusion``, ``dirformer``) through their
    forward methods only, so it follows any change of their internals.

    Args:
        net: A stage-2 network (eval mode).
    """

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        self.multiple = int(net.input_multiple)
        self.prior_unshuffle = int(net.lq_unshuffle)
        self.scale = int(net.scale)

    def forward(self, image: torch.Tensor, x_T: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:  # noqa: N803
        net = self.net
        h, w = image.shape[-2:]
        padded = pad_in_graph(image, self.multiple)
        arranged = (F.pixel_unshuffle(padded, self.prior_unshuffle) if self.prior_unshuffle > 1
                    else padded)
        ipr = net.diffusion.sample(net.cpen(arranged), net.denoiser, noise=x_T)[-1]
        restored = net.dirformer(padded, ipr)
        return restored[..., :h * self.scale, :w * self.scale], ipr


def graph_paths(out_path: str) -> Dict[str, str]:
    """File of each graph kind for the export ``out_path`` (``X.onnx``, ``X.prior.onnx``, ...)."""
    stem = out_path[:-5] if out_path.lower().endswith('.onnx') else out_path
    return {'full': stem + '.onnx', 'prior': stem + '.prior.onnx',
            'dirformer': stem + '.dirformer.onnx'}


def random_ops(model) -> list:
    """Random-number operators in an ``onnx.ModelProto`` (subgraphs included)."""
    found = []

    def visit(graph):
        for node in graph.node:
            if node.op_type in RANDOM_OPS:
                found.append(node.op_type)
            for attr in node.attribute:
                if attr.g is not None and attr.g.node:
                    visit(attr.g)
                for sub in attr.graphs:
                    visit(sub)
    visit(model.graph)
    return found


def network_channels(net: nn.Module) -> Tuple[int, int]:
    """(input, output) image channels of a ``DiffIRS2Net``."""
    return net.lq_prior_channels // net.lq_unshuffle ** 2, net.gt_prior_channels // 16


def _example(net: nn.Module, in_channels: int, dtype: torch.dtype) -> Tuple[torch.Tensor, ...]:
    # batch 2 and sides that are no multiple: nothing gets specialised to the example's shape
    m = int(net.input_multiple)
    gen = torch.Generator().manual_seed(0)
    image = torch.rand(2, in_channels, 2 * m + 3, 2 * m + 5, generator=gen)
    x_t = torch.randn(2, IPR_DIM, generator=gen)
    return image.to(dtype), x_t.to(dtype)


def _trace(module: nn.Module, args: Tuple[torch.Tensor, ...], path: str, opset: int,
           exporter: str) -> None:
    names = dict(input_names=['image', 'x_T'], output_names=['restored', 'ipr'])
    with torch.no_grad():
        if exporter == 'torchscript':
            import warnings
            with warnings.catch_warnings():
                warnings.simplefilter('ignore')  # deprecation + tracer notes on constant shapes
                torch.onnx.export(
                    module, args, path, dynamo=False, opset_version=opset, do_constant_folding=True,
                    dynamic_axes={'image': {0: 'batch', 2: 'height', 3: 'width'},
                                  'x_T': {0: 'batch'}, 'ipr': {0: 'batch'},
                                  'restored': {0: 'batch', 2: 'out_height', 3: 'out_width'}},
                    **names)
        else:
            from torch.export import Dim
            batch = Dim('batch')
            torch.onnx.export(
                module, args, path, dynamo=True, opset_version=opset, external_data=False,
                dynamic_shapes={'image': {0: batch, 2: Dim('height'), 3: Dim('width')},
                                'x_T': {0: batch}}, verbose=False, **names)


def export_onnx(net: nn.Module, out_path: str, *, opset: Optional[int] = None,
                fp16: bool = False, exporter: str = 'torchscript',
                graphs: Sequence[str] = ('full', 'prior', 'dirformer'),
                input_norm: Optional[Tuple[Any, Any]] = None,
                extra_meta: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """Export ``net`` (a ``DiffIRS2Net``) to ONNX graphs plus the JSON sidecar.

    Args:
        net: Stage-2 network; it is put in eval mode (and converted to half for ``fp16``: pass a
            copy if you still need it in fp32).
        out_path: ``X.onnx``; the other graphs and ``X.json`` go beside it (:func:`graph_paths`).
        opset: ONNX opset (default 17 for torchscript, 18 for dynamo).
        fp16: Half-precision weights, inputs and outputs.
        exporter: ``'torchscript'`` or ``'dynamo'``.
        graphs: Which graphs to write (the ONNX Runtime backend needs 'prior' and 'dirformer').
        input_norm: ``(mean, std)`` on the 0..255 scale the network expects (default (0, 255)).
        extra_meta: More sidecar fields (e.g. the source file).

    Returns:
        The sidecar contents, plus ``export_seconds``.

    Raises:
        ValueError: An unknown exporter or graph kind, or a graph with a random operator.
    """
    import onnx
    import onnx.utils

    if exporter not in EXPORTERS:
        raise ValueError(f'exporter must be one of {EXPORTERS}, got {exporter!r}')
    unknown = set(graphs) - set(GRAPH_IO)
    if unknown or not graphs:
        raise ValueError(f'graphs must be a non-empty subset of {sorted(GRAPH_IO)}, got '
                         f'{list(graphs)}')
    opset = int(opset or _DEFAULT_OPSET[exporter])
    out_path = os.fspath(out_path)
    folder = os.path.dirname(os.path.abspath(out_path))
    os.makedirs(folder, exist_ok=True)
    dtype = torch.float16 if fp16 else torch.float32
    net = net.eval().to(device='cpu', dtype=dtype)
    in_channels, out_channels = network_channels(net)
    module = Stage2Graph(net).eval()
    paths = graph_paths(out_path)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        traced = os.path.join(tmp, 'stage2.onnx')
        _trace(module, _example(net, in_channels, dtype), traced, opset, exporter)
        extracted = {}
        for kind in graphs:  # every graph checked before any is published
            io = GRAPH_IO[kind]
            extracted[kind] = os.path.join(tmp, f'{kind}.onnx')
            onnx.utils.extract_model(traced, extracted[kind], io['inputs'], io['outputs'],
                                     check_model=False)
            model = onnx.load(extracted[kind])
            onnx.checker.check_model(model, full_check=True)
            bad = random_ops(model)
            if bad:
                raise ValueError(f'the exported {kind} graph contains random operators {bad}')
        for kind, path in extracted.items():  # same folder: fsync + rename
            replace_atomic(path, paths[kind])
    seconds = time.perf_counter() - start
    mean, std = input_norm if input_norm is not None else (0.0, 255.0)
    meta = dict(
        task=net.task, scale=int(net.scale), in_channels=in_channels, out_channels=out_channels,
        ipr_dim=IPR_DIM, input_multiple=int(net.input_multiple),
        prior_unshuffle=int(net.lq_unshuffle),
        normalisation=dict(mean=_as_list(mean), std=_as_list(std), range='0..255',
                           formula='image = (pixel - mean) / std'),
        padding='inside the graph (reflect right/bottom to input_multiple, edge for tiny inputs)',
        x_T='standard normal start vector of the reverse diffusion, (N, ipr_dim)',
        opset=opset, dtype='float16' if fp16 else 'float32', exporter=exporter,
        torch=torch.__version__,
        graphs={kind: dict(file=os.path.basename(paths[kind]), **GRAPH_IO[kind])
                for kind in graphs},
        **(extra_meta or {}))
    write_sidecar(os.path.splitext(paths['full'])[0] + '.json', meta)
    return dict(meta, export_seconds=seconds)


def _as_list(value: Any) -> list:
    if isinstance(value, (int, float)):
        return [float(value)]
    return [float(v) for v in value]
