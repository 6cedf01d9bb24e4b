"""Torch eager on the CPU: the reference way to run a module, and the only runner for eager-quantized modules."""

from __future__ import annotations

from harness.artifact import ArtifactKind, Precision
from harness.backends._torch_common import TorchBackend
from harness.backends.base import Availability, register_backend


@register_backend
class TorchEager(TorchBackend):
    """Calls the module as is under ``torch.inference_mode``; bf16 modules get their float inputs cast to bf16."""

    name = "torch_eager"
    device = "cpu"
    accepts = frozenset({ArtifactKind.TORCH_MODULE, ArtifactKind.TORCH_QUANTIZED})
    precisions = frozenset({Precision.FP32, Precision.BF16, Precision.INT8})

    @classmethod
    def availability(cls) -> Availability:
        return Availability(True)
