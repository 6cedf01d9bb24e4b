"""ONNX Runtime quantization steps behind the ORT int8 configs: pre-processing, calibration, quantizing, proof.

Kept apart from the configs so that ``quantization.py`` stays a readable list of what each config means.
"""

from __future__ import annotations

import contextlib
import functools
import io
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import onnx

from harness.env import cpu_flags, is_x86
from harness.errors import OptbenchError, TechniqueError, one_line
from harness.onnx_export import FLOAT_COMPUTE_OPS, count_ops, is_int8_compute_op, is_int8_op

if TYPE_CHECKING:
    from model_zoo.spec import Inputs


STEPS_VERSION = 2  # part of every ORT-quantized file's cache key: bump when these steps change what they write
CALIBRATION_BATCH = 16  # samples per calibration run: bounds memory, and part of a static model's cache key


@contextlib.contextmanager
def ort_step(step: str, model: Path) -> Iterator[None]:
    """Turn a failure inside ONNX Runtime's quantization tools into one line that names the step, the model and
    the tool's own reason (ORT raises anything from onnx's InferenceError to a bare AssertionError)."""
    try:
        yield
    except OptbenchError:
        raise
    except Exception as exc:
        raise TechniqueError(f"ONNX Runtime {step} failed on {model.name}: {one_line(exc)}") from exc


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """ORT's calibrators print progress ("Collecting tensor data...") on stdout; keep it out of test output."""
    with contextlib.redirect_stdout(io.StringIO()):
        yield


def preprocess(src: Path, dst: Path) -> None:
    """ORT's recommended pre-pass (shape inference, graph cleanup); the symbolic shape step breaks on transformer
    exports, so it is skipped."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with ort_step("quant_pre_process", src), quiet():
        quant_pre_process(str(src), str(dst), skip_symbolic_shape=True)
    # Drop the inferred shapes it stores: the quantizers infer them again, and onnxruntime 1.30's dynamic
    # quantizer fails its own re-inference against the stored shape of a Gemm weight it transposes
    # ("Inferred shape and existing shape differ"). Measured on onnxruntime 1.32, for every model and ORT config:
    # the same nodes and initializers either way; the files only lose 1-5 KB of shape annotations.
    model = onnx.load(str(dst))
    del model.graph.value_info[:]
    onnx.save(model, str(dst))


def saturates_u8s8() -> bool:
    """Whether ORT's u8 × s8 integer kernels can saturate here: x86 without VNNI (AVX-512 VNNI, AVX-VNNI or AMX),
    where MLAS multiplies with VPMADDUBSW and its pairwise 16-bit sums clip (ORT's quantization guide: "try
    reduce_range"). VNNI accumulates in 32 bits, and ARM's kernels widen first."""
    if not is_x86():
        return False
    return not {"avx512_vnni", "avx_vnni", "amx_int8"} & set(cpu_flags())


# Picks, from the preprocessed graph, the nodes a quantizer leaves in float (ORT's ``nodes_to_exclude``): node names
# exist only after preprocessing, so the caller passes a rule, not names.
Exclude = Callable[[onnx.ModelProto], list[str]]


def weighted_nodes(model: onnx.ModelProto, op_types: tuple[str, ...]) -> list[tuple[onnx.NodeProto, onnx.TensorProto]]:
    """The ``op_types`` nodes whose weight (second input) is a constant, each with that constant, in graph order."""
    constants = {i.name: i for i in model.graph.initializer}
    return [(node, constants[node.input[1]]) for node in model.graph.node
            if node.op_type in op_types and len(node.input) > 1 and node.input[1] in constants]


def is_depthwise(node: onnx.NodeProto, weight_shape: tuple[int, ...]) -> bool:
    """A Conv with one filter of one input channel per group: the layout MLAS runs through its depthwise kernel,
    which widens inputs and weights to 16 bits and multiplies with VPMADDWD into 32-bit sums, so nothing
    saturates there; every other conv, Gemm and MatMul goes through the GEMM kernels."""
    if node.op_type != "Conv" or len(weight_shape) < 2:
        return False
    group = next((int(onnx.helper.get_attribute_value(a)) for a in node.attribute if a.name == "group"), 1)
    return group > 1 and group == weight_shape[0] and weight_shape[1] == 1


def depthwise_weights(model: onnx.ModelProto) -> list[str]:
    """The weight constants of ``model``'s depthwise convolutions (:func:`is_depthwise`), in graph order."""
    return [init.name for node, init in weighted_nodes(model, ("Conv",)) if is_depthwise(node, tuple(init.dims))]


@functools.lru_cache(maxsize=32)
def has_depthwise(path: Path) -> bool:
    """Whether the float graph at ``path`` has a depthwise convolution; read once per file (cache files are named by
    their key and never rewritten, and a static case asks on every run, cached or not)."""
    return bool(depthwise_weights(onnx.load(str(path))))


def probe_session(model: onnx.ModelProto, tensors: list[str]) -> Any:
    """An ORT session of the float graph ``model`` that also returns the float tensors ``tensors`` (layer inputs
    the graph computes on the way), for the steps that measure them (smoothing, GPTQ)."""
    import onnxruntime as ort

    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    existing = {o.name for o in probe.graph.output}
    for name in tensors:
        if name not in existing:
            probe.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    return ort.InferenceSession(probe.SerializeToString(), opts, providers=["CPUExecutionProvider"])


def _excluded(pre: Path, exclude: Exclude | None) -> list[str]:
    return exclude(onnx.load(str(pre))) if exclude is not None else []


def quantize_dynamic(
    src: Path, dst: Path, *, per_channel: bool, op_types: tuple[str, ...], weight_type: str, reduce_range: bool,
    exclude: Exclude | None = None,
) -> None:
    """Int8 weights, activations quantized at run time (DynamicQuantizeLinear → MatMulInteger/ConvInteger)."""
    from onnxruntime.quantization import QuantType
    from onnxruntime.quantization import quantize_dynamic as ort_quantize_dynamic

    with tempfile.TemporaryDirectory(prefix="optbench-quant-") as tmp:
        pre = Path(tmp) / "pre.onnx"
        preprocess(src, pre)
        with ort_step("quantize_dynamic", src), quiet():
            ort_quantize_dynamic(str(pre), str(dst), op_types_to_quantize=list(op_types), per_channel=per_channel,
                                 reduce_range=reduce_range, weight_type=QuantType[weight_type],
                                 nodes_to_exclude=_excluded(pre, exclude))


class _Reader:
    """Feeds calibration inputs to ORT in chunks, as numpy arrays of the model's input types."""

    def __init__(self, model: Path, inputs: Inputs, input_names: tuple[str, ...]) -> None:
        graph_inputs = onnx.load(str(model), load_external_data=False).graph.input
        types = {i.name: onnx.helper.tensor_dtype_to_np_dtype(i.type.tensor_type.elem_type) for i in graph_inputs}
        arrays = {name: t.detach().cpu().numpy() for name, t in zip(input_names, inputs, strict=True) if name in types}
        n = len(inputs[0])
        self._chunks = iter([
            {name: np.ascontiguousarray(a[i:i + CALIBRATION_BATCH].astype(types[name])) for name, a in arrays.items()}
            for i in range(0, n, CALIBRATION_BATCH)
        ])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._chunks, None)


def quantize_static(
    src: Path, dst: Path, calibration: Inputs, input_names: tuple[str, ...], *, calibration_method: str,
    per_channel: bool, quant_format: str, activation_type: str, weight_type: str, op_types: tuple[str, ...] | None,
    percentile: float, reduce_range: bool, exclude: Exclude | None = None,
    then: Callable[[Path], None] | None = None, depthwise_full_range: bool = False,
) -> None:
    """Int8 weights and activations with ranges calibrated on ``calibration`` (training data only); ``then`` is
    called with the preprocessed float graph ORT quantized (its weight names are ``dst``'s) once ``dst`` is written.
    ``depthwise_full_range`` gives depthwise convolutions' weights the whole 8-bit grid where ``reduce_range``
    gives the others 7 bits (ORT's per-tensor override): their kernel cannot saturate (:func:`is_depthwise`)."""
    from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType
    from onnxruntime.quantization import quantize_static as ort_quantize_static

    class Reader(_Reader, CalibrationDataReader):  # ORT type-checks the reader's base class
        pass

    extra: dict[str, Any] = {"CalibPercentile": percentile} if calibration_method == "Percentile" else {}
    with tempfile.TemporaryDirectory(prefix="optbench-quant-") as tmp:
        pre = Path(tmp) / "pre.onnx"
        preprocess(src, pre)
        if reduce_range and depthwise_full_range:
            # An override without "axis" makes its tensor per-tensor: a conv weight's channels are its axis 0.
            override: dict[str, Any] = {"reduce_range": False, **({"axis": 0} if per_channel else {})}
            extra["TensorQuantOverrides"] = {name: [override] for name in depthwise_weights(onnx.load(str(pre)))}
        with ort_step("quantize_static", src), quiet():
            ort_quantize_static(
                str(pre), str(dst), Reader(pre, calibration, input_names), quant_format=QuantFormat[quant_format],
                op_types_to_quantize=list(op_types) if op_types is not None else None, per_channel=per_channel,
                reduce_range=reduce_range, activation_type=QuantType[activation_type],
                weight_type=QuantType[weight_type], calibrate_method=CalibrationMethod[calibration_method],
                nodes_to_exclude=_excluded(pre, exclude), extra_options=extra,
            )
        if then is not None:
            then(pre)


def optimized_op_counts(path: Path, threads: int) -> dict[str, int]:
    """Op counts of the graph ORT's CPU provider actually runs, after its fusions (QDQ pairs → QLinearConv...)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = threads
    opts.log_severity_level = 3  # it warns that a saved ENABLE_ALL graph is hardware specific: we only count it
    with tempfile.TemporaryDirectory(prefix="optbench-opt-") as tmp:
        opts.optimized_model_filepath = str(Path(tmp) / "optimized.onnx")
        ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        return count_ops(Path(opts.optimized_model_filepath))


def depthwise_8bit(path: Path) -> int:
    """How many depthwise convolutions of the QDQ file ``path`` hold weights beyond the 7-bit grid (some integer
    more than 64 from its zero point): those that kept the whole 8-bit grid."""
    model = onnx.load(str(path))
    consts = {i.name: i for i in model.graph.initializer}
    dequant = {n.output[0]: n for n in model.graph.node if n.op_type == "DequantizeLinear"}
    n = 0
    for node in model.graph.node:
        dq = dequant.get(node.input[1]) if node.op_type == "Conv" and len(node.input) > 1 else None
        if dq is None or dq.input[0] not in consts or not is_depthwise(node, tuple(consts[dq.input[0]].dims)):
            continue
        q = onnx.numpy_helper.to_array(consts[dq.input[0]]).astype(np.int64)
        zero = (onnx.numpy_helper.to_array(consts[dq.input[2]]).astype(np.int64) if len(dq.input) > 2
                and dq.input[2] in consts else np.zeros(1, np.int64))
        n += int(np.abs(q - zero.reshape(-1, *[1] * (q.ndim - 1))).max() > 64)
    return n


def int8_proof(path: Path, threads: int) -> dict[str, float]:
    """Measured evidence of int8: int8 ops in the file (total and per type), int8 kernels and float matmul/conv
    left in the graph ORT runs after optimizing it."""
    in_file = {op: n for op, n in count_ops(path).items() if is_int8_op(op)}
    optimized = optimized_op_counts(path, threads)
    proof: dict[str, float] = {"int8_ops": float(sum(in_file.values()))}
    proof.update({f"int8_ops.{op}": float(n) for op, n in in_file.items()})
    proof["int8_kernels"] = float(sum(n for op, n in optimized.items() if is_int8_compute_op(op)))
    proof["float_matmul_conv_kernels"] = float(sum(n for op, n in optimized.items() if op in FLOAT_COMPUTE_OPS))
    return proof
