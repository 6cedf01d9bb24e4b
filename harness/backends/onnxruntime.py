"""ONNX Runtime on the CPU (CPUExecutionProvider): runs ONNX artifacts, and torch modules after exporting them."""

from __future__ import annotations

from harness.artifact import ArtifactKind, Precision
from harness.backends._ort_common import OrtBackend
from harness.backends.base import register_backend


@register_backend
class OnnxRuntime(OrtBackend):
    """``threads`` intra-op threads, one inter-op thread, ORT_ENABLE_ALL; int8 models run ORT's integer kernels."""

    name = "onnxruntime"
    device = "cpu"
    provider = "CPUExecutionProvider"
    accepts = frozenset({ArtifactKind.ONNX_MODEL, ArtifactKind.TORCH_MODULE})
    precisions = frozenset({Precision.FP32, Precision.INT8})
