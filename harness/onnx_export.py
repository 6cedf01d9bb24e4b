"""Torch → ONNX export with the dynamo exporter, a validated on-disk cache of exports, and ONNX op counts.

Exports use opset 18 (the opset torch 2.13's torchlib is written in, so no version conversion runs), a dynamic
batch dimension on every input, one output named ``output`` and weights inside the file (no external data).
"""

from __future__ import annotations

import collections
import contextlib
import io
import logging
import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import onnx
import torch
from torch import nn

from harness.cache import Cache, make_key
from harness.errors import ExportError

if TYPE_CHECKING:
    from model_zoo.spec import Inputs

logger = logging.getLogger(__name__)

OPSET = 18
OUTPUT_NAME = "output"
BATCH_DIM = "batch"
# Everything about how we call the exporter that changes its output; part of every export's cache key.
EXPORT_SETTINGS = {"exporter": "dynamo", "opset": OPSET, "optimize": True, "dynamic": "batch", "external_data": False}

# Ops that compute on or move int8/uint8 data: ORT's dynamic (MatMulInteger, ConvInteger, DynamicQuantize*),
# static QOperator (QLinear*, QGemm, QAttention...) and QDQ (QuantizeLinear/DequantizeLinear) forms.
INT8_OPS = frozenset({
    "QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "DynamicQuantizeMatMul", "DynamicQuantizeLSTM",
    "MatMulInteger", "MatMulIntegerToFloat", "ConvInteger", "QGemm", "QAttention", "QEmbedLayerNormalization",
})
# The subset that does arithmetic in int8 (not just converting to or from it).
INT8_COMPUTE_OPS = frozenset({
    "DynamicQuantizeMatMul", "MatMulInteger", "MatMulIntegerToFloat", "ConvInteger", "QGemm", "QAttention",
})
# Float ops that a quantizer would have turned into int8 compute; what is left of them shows its coverage.
FLOAT_COMPUTE_OPS = frozenset({"MatMul", "Gemm", "Conv", "ConvTranspose", "FusedMatMul", "FusedConv", "FusedGemm"})

_NOISY_LOGGERS = (
    "torch.onnx._internal.exporter._registration",
    "onnxscript.optimizer._constant_folding",
    "torch.fx.experimental.symbolic_shapes",  # "Unable to find user code corresponding to {u0}" on failures
)
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _quiet_exporter() -> contextlib.ExitStack:
    """Silence what the exporter prints and warns about on every call, narrowly, so warnings-as-errors runs pass."""
    stack = contextlib.ExitStack()
    stack.enter_context(warnings.catch_warnings())
    # torch 2.13's export passes deep-copy pytree specs and trip typing_extensions' deprecation of LeafSpec.
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)", category=FutureWarning)
    # One Dim shared by all inputs (their batches must agree) makes the axis-renaming step warn that it is shared.
    warnings.filterwarnings("ignore", message=r"# The axis name: .* will not be used", category=UserWarning)
    # "torchvision is not installed. Skipping torchvision::nms" and the like, logged on first use.
    # onnxscript's constant folder logs "Evaluation failed: ..." for shapes it leaves to run time;
    # symbolic_shapes warns before a data-dependent failure that the ExportError reports anyway.
    for name in _NOISY_LOGGERS:
        noisy = logging.getLogger(name)
        stack.callback(noisy.setLevel, noisy.level)
        noisy.setLevel(logging.ERROR)
    # torch.export prints the failing graph to stderr before raising; the ExportError carries the reason instead.
    stack.enter_context(contextlib.redirect_stdout(io.StringIO()))
    stack.enter_context(contextlib.redirect_stderr(io.StringIO()))
    return stack


def _reason(exc: BaseException) -> str:
    """The innermost cause of an exporter failure as one line (the outer errors are boilerplate)."""
    root = exc
    while root.__cause__ is not None and root.__cause__ is not root:
        root = root.__cause__
    lines = [ln.strip() for ln in _ANSI.sub("", str(root)).splitlines() if ln.strip()]
    first = lines[0] if lines else ""
    return f"{type(root).__name__}: {first}" if first else type(root).__name__


def _batch2(example: Inputs) -> Inputs:
    """The dynamo exporter specializes a dimension of size 1, so a batch-1 example is doubled to batch 2."""
    if int(example[0].shape[0]) >= 2:
        return example
    return tuple(torch.cat([t, t]) for t in example)


def export_onnx(module: nn.Module, example: Inputs, input_names: tuple[str, ...] | list[str], path: Path) -> None:
    """Export ``module`` called on ``example`` to ``path`` (opset 18, dynamic batch, output named ``output``).

    Raises ExportError with the exporter's reason in one line when torch.export or the ONNX translation fails.
    """
    if len(input_names) != len(example):
        raise ExportError(f"ONNX export of {type(module).__name__} failed: {len(input_names)} input names "
                          f"for {len(example)} inputs")
    args = _batch2(example)
    batch = torch.export.Dim(BATCH_DIM)
    dynamic_shapes = tuple({0: batch} for _ in args)
    what = type(module).__name__
    was_training = module.training
    module.eval()
    try:
        with _quiet_exporter(), torch.no_grad():
            torch.onnx.export(
                module, args, str(path), dynamo=True, opset_version=OPSET, input_names=list(input_names),
                output_names=[OUTPUT_NAME], dynamic_shapes=dynamic_shapes, external_data=False, verbose=False,
                optimize=True,
            )
    except Exception as exc:  # the exporter raises many types; all mean the same to a user
        raise ExportError(f"ONNX export of {what} failed: {_reason(exc)}") from exc
    finally:
        module.train(was_training)
    logger.debug("exported %s to %s", what, path)


def validate_onnx(path: Path) -> None:
    """Raise if ``path`` is not a loadable, well-formed ONNX model (used to reject corrupt cache entries)."""
    onnx.checker.check_model(str(path))


def export_key(key: str, example: Inputs, input_names: tuple[str, ...] | list[str]) -> str:
    """Cache key of an export: the model's key, the inputs' names, dtypes and non-batch shapes, library versions."""
    signature = [(str(t.dtype), list(t.shape[1:])) for t in example]
    return make_key(key, list(input_names), signature, torch.__version__, onnx.__version__, _onnxscript_version(),
                    EXPORT_SETTINGS)


def cached_export(
    key: str, module: nn.Module, example: Inputs, input_names: tuple[str, ...] | list[str], cache: Cache
) -> Path:
    """Export once per model key and environment; a cached file that fails validation is rebuilt."""
    path = cache.path("onnx", export_key(key, example, input_names), ".onnx")
    return cache.get_or_create(path, lambda tmp: export_onnx(module, example, input_names, tmp), validate_onnx)


def _onnxscript_version() -> str:
    try:
        import onnxscript
    except ImportError:  # pragma: no cover - the dynamo exporter itself needs it
        return "missing"
    return str(onnxscript.__version__)


def _nodes(graph: onnx.GraphProto) -> Iterator[onnx.NodeProto]:
    for node in graph.node:
        yield node
        for attr in node.attribute:  # If/Loop/Scan bodies
            if attr.type == onnx.AttributeProto.GRAPH:
                yield from _nodes(attr.g)
            elif attr.type == onnx.AttributeProto.GRAPHS:
                for g in attr.graphs:
                    yield from _nodes(g)


def count_ops(path: Path) -> dict[str, int]:
    """Node count per op type in the model's graph, its subgraphs and its local functions."""
    model = onnx.load(str(path), load_external_data=False)
    counts: collections.Counter[str] = collections.Counter(n.op_type for n in _nodes(model.graph))
    for fn in model.functions:
        counts.update(n.op_type for n in fn.node)
    return dict(sorted(counts.items()))


def is_int8_op(op_type: str) -> bool:
    """Whether an op computes on or converts to/from int8 (any ``QLinear*`` op, or one of :data:`INT8_OPS`)."""
    return op_type in INT8_OPS or op_type.startswith("QLinear")


def is_int8_compute_op(op_type: str) -> bool:
    """Whether an op does arithmetic in int8 (``QLinear*``, MatMulInteger, ConvInteger...), not just converts."""
    return op_type in INT8_COMPUTE_OPS or op_type.startswith("QLinear")


def int8_op_count(path: Path) -> int:
    """Number of nodes that compute on or move int8 data (see :func:`is_int8_op`)."""
    return sum(n for op, n in count_ops(path).items() if is_int8_op(op))
