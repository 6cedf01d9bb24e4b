"""From a case's artifact to a counting job: the file the worker loads, the batch-1 inputs, and the digests that
key the count; or the reason a case is not counted."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
import torch

from harness.artifact import Artifact, ArtifactKind, Precision
from harness.backends._ort_common import onnx_file
from harness.backends.base import BACKENDS
from harness.cache import Cache, atomic_write
from harness.context import Context
from harness.work.counter import Job
from model_zoo.spec import ModelSpec

# Backends whose calls a count can stand for, and what the worker loads for each.
COUNTED = {"onnxruntime": "onnx", "torch_eager": "torch"}
WHY_NOT = {
    "torch_compile": "inductor compiles host-native code (AVX-512 where the host has it) that Valgrind cannot run; "
                     "its model is counted on torch eager and ONNX Runtime",
}

# Valgrind presents a CPU without AVX-512 (so without AVX-512 BF16 or AMX): under it torch takes bf16's emulated
# path, however native bf16 is on the host. Only hosts with bf16 instructions make bf16 cases at all.
BF16_WHY = ("bf16: Valgrind presents a CPU without bf16 instructions, so torch would run its emulated path there; "
            "that count would not be this host's work")


class NotCounted(Exception):
    """Why a case has no work figures (a backend Valgrind cannot stand for, a module that cannot be saved)."""


def precision_reason(precision: Precision) -> str | None:
    """Why a case of this precision is not counted (known before its artifact is built), or None."""
    return BF16_WHY if precision is Precision.BF16 else None


def not_counted_reason(backend: str) -> str | None:
    if backend in COUNTED:
        return None
    if BACKENDS.get(backend).device != "cpu":
        return "Valgrind counts host instructions; this backend's work runs on the GPU"
    return WHY_NOT.get(backend, f"no counting worker for {backend}")


def _file_digest(*paths: Path) -> str:
    digest = hashlib.sha256()
    for path in paths:
        if path.exists():
            digest.update(path.read_bytes())
    return digest.hexdigest()[:20]


def _save_inputs(spec: ModelSpec, cache: Cache) -> tuple[Path, str]:
    arrays = {f"input{i}": t.detach().cpu().numpy() for i, t in enumerate(spec.example_inputs(1))}
    digest = hashlib.sha256()
    for name, array in arrays.items():
        digest.update(f"{name}|{array.dtype}|{array.shape}|".encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    key = digest.hexdigest()[:20]
    path = cache.path("work", f"inputs-{key}", ".npz")
    def write(tmp: Path) -> None:
        with tmp.open("wb") as out:
            np.savez(out, **arrays)

    if not path.exists():
        atomic_write(path, write)
    return path, key


def _save_module(module: torch.nn.Module, cache: Cache) -> tuple[Path, str]:
    buffer = io.BytesIO()
    try:
        torch.save(module, buffer)
    except Exception as exc:  # a user's module with a lambda or a local class cannot be pickled
        raise NotCounted(f"the module cannot be saved for the counting process ({type(exc).__name__}: "
                         f"{str(exc).splitlines()[0] if str(exc) else ''}); expected a picklable nn.Module") from exc
    data = buffer.getvalue()
    digest = hashlib.sha256(data).hexdigest()[:20]
    path = cache.path("work", f"module-{digest}", ".pt")
    if not path.exists():
        atomic_write(path, lambda tmp: tmp.write_bytes(data))
    return path, digest


def job_for(name: str, backend: str, artifact: Artifact, spec: ModelSpec, cache: Cache) -> Job:
    """The counting job of ``artifact`` as ``backend`` runs it; NotCounted says why there is none."""
    reason = not_counted_reason(backend)
    if reason is not None:
        raise NotCounted(reason)
    if (why := precision_reason(artifact.precision)) is not None:
        raise NotCounted(why)
    inputs, inputs_digest = _save_inputs(spec, cache)
    if COUNTED[backend] == "onnx":
        instance = BACKENDS.get(backend)(Context(cache, 1))
        path = onnx_file(artifact, spec.example_inputs(2), spec.input_names, instance)
        digest = _file_digest(path, path.with_name(path.name + ".data"))
        return Job(name, "onnx", path, digest, inputs, inputs_digest, spec.input_names)
    if artifact.kind not in (ArtifactKind.TORCH_MODULE, ArtifactKind.TORCH_QUANTIZED) or artifact.module is None:
        raise NotCounted(f"a {artifact.kind.value} artifact does not run on torch eager")
    path, digest = _save_module(artifact.module, cache)
    return Job(name, "torch", path, digest, inputs, inputs_digest, spec.input_names)
