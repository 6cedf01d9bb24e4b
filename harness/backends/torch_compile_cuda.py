"""torch.compile (inductor, triton kernels) on a CUDA device; compile time is on ``runner.prepare_seconds``."""

from __future__ import annotations

from harness.artifact import ArtifactKind, Precision
from harness.backends._torch_common import TorchBackend, cuda_availability
from harness.backends.base import Availability, register_backend


@register_backend
class TorchCompileCuda(TorchBackend):
    """Inductor-compiled copy of the module on ``cuda``; the bound call synchronizes."""

    name = "torch_compile_cuda"
    device = "cuda"
    compiled = True
    accepts = frozenset({ArtifactKind.TORCH_MODULE})
    precisions = frozenset({Precision.FP32, Precision.FP16, Precision.BF16})

    @classmethod
    def availability(cls) -> Availability:
        return cuda_availability(need_triton=True)
