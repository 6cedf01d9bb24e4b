"""ONNX Runtime on a GPU (CUDAExecutionProvider) with io-binding; needs the onnxruntime-gpu package.

Int8 is not offered: the CUDA provider has no kernels for the integer ops ORT's CPU quantizers emit
(MatMulInteger, QLinearConv...), so those nodes would run on the CPU and the figure would mislead.
"""

from __future__ import annotations

from harness.artifact import ArtifactKind, Precision
from harness.backends._ort_common import OrtBackend, OrtCudaRunner
from harness.backends.base import register_backend


@register_backend
class OnnxRuntimeCuda(OrtBackend):
    """Inputs live on the GPU before timing; each run copies the output back, which waits for the device."""

    name = "onnxruntime_cuda"
    device = "cuda"
    provider = "CUDAExecutionProvider"
    runner_cls = OrtCudaRunner
    accepts = frozenset({ArtifactKind.ONNX_MODEL, ArtifactKind.TORCH_MODULE})
    precisions = frozenset({Precision.FP32, Precision.FP16})
