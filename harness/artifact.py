"""What a technique hands a backend: a torch module or an ONNX file, with its precision and proof."""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import io
from pathlib import Path
from typing import Any

import torch
from torch import nn


class ArtifactKind(enum.StrEnum):
    """The form an optimized model takes; backends declare which forms they accept."""

    TORCH_MODULE = "torch_module"  # a plain nn.Module: eager, compile and ONNX export can take it
    TORCH_QUANTIZED = "torch_quantized"  # an eager-mode quantized module: only torch eager runs it
    ONNX_MODEL = "onnx_model"  # an .onnx file: only ONNX Runtime runs it


class Precision(enum.StrEnum):
    FP32 = "fp32"
    FP16 = "fp16"
    BF16 = "bf16"
    INT8 = "int8"


@dataclasses.dataclass
class Artifact:
    """One optimized model. ``proof`` holds measured evidence the optimization happened (int8 op counts...)."""

    kind: ArtifactKind
    precision: Precision
    key: str  # cache key of everything that made it; backends key their own caches on it
    module: nn.Module | None = None
    onnx_path: Path | None = None
    proof: dict[str, float] = dataclasses.field(default_factory=dict)
    # Settings a technique chose for this machine (ORT's weight range on CPUs without VNNI): an artifact made
    # with other choices is another artifact, so the gate does not compare its quality with the baseline's.
    machine_choices: dict[str, str] = dataclasses.field(default_factory=dict)
    # A training technique's figures (harness.techniques.training.TrainingOutcome.to_dict()), and the digest of
    # the weights it trained: the gate's quality identity is then these weights, not the reference's.
    training: dict[str, Any] | None = None
    weights: str = ""
    details: dict[str, Any] = dataclasses.field(default_factory=dict)  # free JSON for the report (small)

    def __post_init__(self) -> None:
        if self.kind is ArtifactKind.ONNX_MODEL:
            assert self.onnx_path is not None, "an ONNX artifact needs onnx_path"
        else:
            assert self.module is not None, "a torch artifact needs module"

    def size_bytes(self) -> int:
        """Serialized size: the .onnx file (with external data), or the module's saved state_dict."""
        if self.onnx_path is not None:
            return onnx_size_bytes(self.onnx_path)
        assert self.module is not None
        return state_dict_size_bytes(self.module)


def weights_digest(module: nn.Module) -> str:
    """Content hash of a module's parameters and buffers (names, dtypes, shapes, bytes): two references with the
    same digest compute the same function. Training on another CPU, with the same seeds, can change it."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())  # reshape: 0-d buffers (BatchNorm's count)
    return digest.hexdigest()[:16]


def state_dict_size_bytes(module: nn.Module) -> int:
    buf = io.BytesIO()
    torch.save(module.state_dict(), buf)
    return buf.tell()


def onnx_size_bytes(path: Path) -> int:
    """Size of an ONNX model file plus any external-data files beside it that it names."""
    total = path.stat().st_size
    data = path.with_name(path.name + ".data")
    if data.exists():
        total += data.stat().st_size
    return total
