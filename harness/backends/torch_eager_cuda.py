"""Torch eager on a CUDA device; the bound call synchronizes so a timing covers the GPU's work."""

from __future__ import annotations

from harness.artifact import ArtifactKind, Precision
from harness.backends._torch_common import TorchBackend, cuda_availability
from harness.backends.base import Availability, register_backend


@register_backend
class TorchEagerCuda(TorchBackend):
    """Runs a copy of the module moved to ``cuda``; eager-quantized (int8) modules are CPU-only and not accepted."""

    name = "torch_eager_cuda"
    device = "cuda"
    accepts = frozenset({ArtifactKind.TORCH_MODULE})
    precisions = frozenset({Precision.FP32, Precision.FP16, Precision.BF16})

    @classmethod
    def availability(cls) -> Availability:
        return cuda_availability()
