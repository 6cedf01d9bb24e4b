"""SmoothQuant-style activation smoothing of an ONNX graph, before ORT quantizes it (Xiao et al. 2022).

Int8 activations take one scale per tensor, so a few input channels with large values (a transformer's outlier
dimensions, a GELU's long tail) spend the 256 levels every other channel needs. Smoothing divides each input channel
``j`` of a weighted MatMul or Gemm by ``s_j`` and multiplies the weight's row ``j`` by it, which leaves the product
unchanged in exact arithmetic::

    s_j = max|X_j| ** alpha / max|W_j| ** (1 - alpha)

``alpha`` moves quantization difficulty from the activations (0: none moved) to the weights (1: all of it). The
activation maxima are measured on calibration inputs through the float graph. Only channels whose ``s`` is above the
tensor's median are divided (``s`` is taken relative to that median and floored at 1; a common factor changes
nothing once quantized per tensor). SmoothQuant as written also multiplies up the channels that were quiet on
calibration, and a ReLU that rarely fired there then spends the tensor's whole range on the inputs where it does:
on a 16-64-64-4 MLP, relative output error 0.74 at alpha 0.7 against 0.026 unsmoothed, and 0.028 floored (0.016
at alpha 0.5). On MiniLM the floored scales were the better ones too: mean cosine 0.9973 against 0.9946 at alpha
0.7, every MatMul in int8 with 7-bit signed weights. Nodes that read one tensor (a BERT
layer's query, key and value) share one ``s``, taken with the largest weight of the three, and one division.

SmoothQuant folds ``1 / s`` into the LayerNorm before the layer, which a post-LN encoder cannot do (that LayerNorm's
output is also the residual stream) and which no op before a GELU allows: here the division is an explicit ``Mul``
node by a constant, one elementwise op per smoothed tensor, which ORT's quantizer then quantizes the output of.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import onnx
from onnx import numpy_helper

from harness.errors import TechniqueError
from harness.techniques._ort_quant import _Reader, probe_session, weighted_nodes

if TYPE_CHECKING:
    from model_zoo.spec import Inputs

OP_TYPES = ("MatMul", "Gemm")
_FLOOR = 1e-5  # channel maxima below this count as this: a silent channel or an all-zero weight row is not divided by 0
INVERSE_SUFFIX = "_smooth_inverse"  # the name of each division's constant ends so


def _rows_axis(node: onnx.NodeProto) -> int:
    """The axis of the weight that runs over the node's input channels: 0 for MatMul's (in, out), 1 for a Gemm
    with ``transB``."""
    if node.op_type == "Gemm":
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        if attrs.get("transA", 0):
            raise TechniqueError(f"smoothing: Gemm {node.name!r} transposes its input (transA), which is not handled")
        return 1 if attrs.get("transB", 0) else 0
    return 0


def smoothable(model: onnx.ModelProto, op_types: tuple[str, ...]) -> dict[str, list[onnx.NodeProto]]:
    """The weighted MatMul and Gemm nodes among ``op_types`` with a 2-D constant weight, by the tensor they read."""
    groups: dict[str, list[onnx.NodeProto]] = {}
    for node, weight in weighted_nodes(model, tuple(t for t in OP_TYPES if t in op_types)):
        if len(weight.dims) == 2:
            groups.setdefault(node.input[0], []).append(node)
    return groups


def activation_maxima(model: onnx.ModelProto, path: Path, tensors: list[str], inputs: Inputs,
                      input_names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Per tensor of ``tensors``, the largest |value| of each channel (last axis) over ``inputs``, run through the
    float graph ``model`` (read from ``path``) with those tensors as extra outputs."""
    session = probe_session(model, tensors)
    reader = _Reader(path, inputs, input_names)
    maxima: dict[str, np.ndarray] = {}
    while (feed := reader.get_next()) is not None:  # in the reader's chunks, which bound memory as calibration's do
        for name, out in zip(tensors, session.run(tensors, feed), strict=True):
            m = np.abs(out.reshape(-1, out.shape[-1])).max(axis=0)
            maxima[name] = np.maximum(maxima[name], m) if name in maxima else m
    return maxima


def smooth(src: Path, dst: Path, alpha: float, calibration: Inputs, input_names: tuple[str, ...],
           op_types: tuple[str, ...] = OP_TYPES) -> int:
    """Write ``src`` smoothed with migration strength ``alpha`` to ``dst``; return how many tensors were smoothed.
    The graph computes the same function (up to float rounding); only its MatMul/Gemm inputs are rescaled."""
    model = onnx.load(str(src))
    groups = smoothable(model, op_types)
    if not groups:
        return 0
    maxima = activation_maxima(model, src, list(groups), calibration, input_names)
    inits = {i.name: i for i in model.graph.initializer}
    uses: dict[str, int] = {}
    for node in model.graph.node:
        for name in node.input:
            uses[name] = uses.get(name, 0) + 1
    new_nodes: list[tuple[int, onnx.NodeProto]] = []
    position = {id(node): i for i, node in enumerate(model.graph.node)}
    for k, (tensor, nodes) in enumerate(groups.items()):
        weights = [numpy_helper.to_array(inits[n.input[1]]) for n in nodes]
        w_max = np.max([np.abs(w).max(axis=1 - _rows_axis(n)) for n, w in zip(nodes, weights, strict=True)], axis=0)
        x_max = maxima[tensor]
        if x_max.shape != w_max.shape:
            raise TechniqueError(f"smoothing: {tensor!r} has {x_max.shape[0]} channels, its weights "
                                 f"{w_max.shape[0]} rows")
        s = np.maximum(x_max, _FLOOR) ** alpha / np.maximum(w_max, _FLOOR) ** (1 - alpha)
        s = np.maximum(s / np.median(s), 1.0).astype(np.float32)
        scaled = f"{tensor}_smoothed"
        inverse = numpy_helper.from_array((1 / s).astype(np.float32), f"{tensor}{INVERSE_SUFFIX}")
        model.graph.initializer.append(inverse)
        mul = onnx.helper.make_node("Mul", [tensor, inverse.name], [scaled], name=f"smooth_{k}")
        new_nodes.append((min(position[id(n)] for n in nodes), mul))
        for j, (node, w) in enumerate(zip(nodes, weights, strict=True)):
            axis = _rows_axis(node)
            rescaled = w * (s[:, None] if axis == 0 else s[None, :])
            name = node.input[1]
            if uses[name] > 1:  # still read by another node: this one gets its own copy
                uses[name] -= 1
                name = f"{name}_smoothed_{k}_{j}"
                model.graph.initializer.append(numpy_helper.from_array(rescaled.astype(w.dtype), name))
                node.input[1] = name
            else:
                inits[name].CopyFrom(numpy_helper.from_array(rescaled.astype(w.dtype), name))
            node.input[0] = scaled
    for index, mul in sorted(new_nodes, key=lambda t: -t[0]):
        model.graph.node.insert(index, mul)
    onnx.save(model, str(dst))
    return len(groups)


def count(model: onnx.ModelProto) -> int:
    """How many tensors of ``model`` are divided by smoothing scales (Mul nodes by a ``*_smooth_inverse`` constant)."""
    return sum(n.op_type == "Mul" and len(n.input) == 2 and n.input[1].endswith(INVERSE_SUFFIX)
               for n in model.graph.node)


@contextlib.contextmanager
def smoothed(src: Path, alpha: float, calibration: Inputs, input_names: tuple[str, ...],
             op_types: tuple[str, ...]) -> Iterator[Path]:
    """``src`` itself when ``alpha`` is 0, else a temporary smoothed copy of it (:func:`smooth`), removed after."""
    if not alpha:
        yield src
        return
    with tempfile.TemporaryDirectory(prefix="optbench-smooth-") as tmp:
        dst = Path(tmp) / "smoothed.onnx"
        smooth(src, dst, alpha, calibration, input_names, op_types)
        yield dst
