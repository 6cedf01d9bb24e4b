"""torch.compile (inductor) on the CPU; compilation happens in ``prepare`` and ``bind`` so timings exclude it.

The seconds spent compiling are on ``runner.prepare_seconds``.
"""

from __future__ import annotations

import os
import shutil

from harness.artifact import ArtifactKind, Precision
from harness.backends._torch_common import TorchBackend
from harness.backends.base import Availability, register_backend


@register_backend
class TorchCompile(TorchBackend):
    """Inductor-compiled module on the CPU; compiled code is specialized per input shape, each compiled on bind."""

    name = "torch_compile"
    device = "cpu"
    compiled = True
    accepts = frozenset({ArtifactKind.TORCH_MODULE})
    precisions = frozenset({Precision.FP32, Precision.BF16})

    @classmethod
    def availability(cls) -> Availability:
        compiler = os.environ.get("CXX") or "c++"
        if shutil.which(compiler) is None and shutil.which("g++") is None and shutil.which("clang++") is None:
            return Availability(False, f"inductor needs a C++ compiler on the CPU and none was found ({compiler})")
        return Availability(True)
