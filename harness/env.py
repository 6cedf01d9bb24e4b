"""The environment a run or a baseline was measured on: CPU, cores, threads, library versions, GPU."""

from __future__ import annotations

import functools
import importlib.metadata
import os
import platform
from pathlib import Path
from typing import Any

import psutil

from harness.gate import Scope

LIBRARIES = ("optbench", "torch", "onnx", "onnxruntime", "numpy", "transformers", "scikit-learn", "pytest-benchmark")
CPU_FLAGS = ("avx", "avx2", "fma", "f16c", "avx512f", "avx512_vnni", "avx512_bf16", "avx_vnni", "amx_int8", "amx_bf16")
ISA_KEYS = ("cpu_flags", "threads", "gpu")
MACHINE_KEYS = ("cpu", "cpu_flags", "logical_cores", "threads", "gpu")


@functools.cache
def _cpu() -> tuple[str, tuple[str, ...]]:
    name, flags = platform.processor() or platform.machine(), set[str]()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key == "model name" and value.strip():
                name = value.strip()
            elif key == "flags":
                flags = set(value.split())
            if name and flags:
                break
    return name, tuple(f for f in CPU_FLAGS if f in flags)


def is_x86() -> bool:
    return platform.machine().lower() in ("x86_64", "amd64", "i386", "i686")


def cpu_flags() -> tuple[str, ...]:
    """The speed-relevant features of this CPU, among :data:`CPU_FLAGS`."""
    return _cpu()[1]


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _gpu() -> str | None:
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    return str(torch.cuda.get_device_name(0))


def capture(threads: int) -> dict[str, Any]:
    """A JSON-ready description of this machine and its software, as a run or a baseline records it."""
    cpu, flags = _cpu()
    return {
        "cpu": cpu,
        "cpu_flags": list(flags),
        "physical_cores": psutil.cpu_count(logical=False),
        "logical_cores": os.cpu_count(),
        "threads": threads,
        "gpu": _gpu(),
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "libraries": {name: _version(name) for name in LIBRARIES},
    }


def comparable_scopes(a: dict[str, Any], b: dict[str, Any]) -> frozenset[Scope]:
    """Which baseline figures taken on ``a`` still mean something on ``b``: artifact figures anywhere; speedup
    ratios with the same CPU features, threads and GPU; absolute latency on the same CPU model and core count too."""
    scopes = {Scope.ANYWHERE}
    if all(a.get(k) == b.get(k) for k in ISA_KEYS):
        scopes.add(Scope.SAME_ISA)
        if all(a.get(k) == b.get(k) for k in MACHINE_KEYS):
            scopes.add(Scope.SAME_MACHINE)
    return frozenset(scopes)


def describe(e: dict[str, Any]) -> str:
    """One line naming what speed depends on: CPU, its features, threads, GPU, torch and ONNX Runtime."""
    libs = e.get("libraries", {})
    flags = ",".join(e.get("cpu_flags", [])) or "none of " + ",".join(CPU_FLAGS[:3])
    gpu = f", GPU {e['gpu']}" if e.get("gpu") else ""
    return (f"{e.get('cpu')} [{flags}], {e.get('logical_cores')} CPUs, {e.get('threads')} thread(s){gpu}; "
            f"torch {libs.get('torch')}, onnxruntime {libs.get('onnxruntime')}")
