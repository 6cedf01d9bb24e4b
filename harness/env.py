"""The environment a run or a baseline was measured on: CPU, cores, threads, library versions, GPU, and the
machine class it falls in (what decides speed), which keys a baseline's per-machine entries."""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import os
import platform
from pathlib import Path
from typing import Any

import psutil

from harness.core import Scope

LIBRARIES = ("optbench", "torch", "onnx", "onnxruntime", "numpy", "transformers", "scikit-learn", "pytest-benchmark")
# Speed-relevant ISA features, x86 and ARM, as py-cpuinfo names them (ARM: asimddp = dot product, i8mm, sve, bf16,
# asimdhp = fp16 arithmetic). int8 and bf16 speedups hinge on exactly these.
CPU_FLAGS = ("avx", "avx2", "fma", "f16c", "avx512f", "avx512_vnni", "avx512_bf16", "avx_vnni", "amx_int8", "amx_bf16",
             "asimd", "asimddp", "asimdhp", "i8mm", "sve", "sve2", "bf16")
_FLAG_ALIASES = {"avx512vnni": "avx512_vnni", "avx512bf16": "avx512_bf16", "avxvnni": "avx_vnni"}  # cpuid spellings
ISA_KEYS = ("cpu_flags", "threads", "gpu")
MACHINE_KEYS = ("cpu", "cpu_flags", "logical_cores", "threads", "gpu")
# What a machine class is made of: the baseline entries of one class are comparable in speed (within the speed
# probe's normalisation for absolute latency).
CLASS_KEYS = ("arch", "cpu_flags", "logical_cores", "threads", "gpu")
CLASS_LIBRARIES = ("torch", "onnxruntime")


@functools.cache
def _cpu() -> tuple[str, tuple[str, ...]]:
    """CPU brand and speed-relevant features, read portably (Linux, macOS, Windows; x86 and ARM) by py-cpuinfo."""
    import cpuinfo  # py-cpuinfo; imported lazily: it probes the CPU once (~0.2 s)

    info = cpuinfo.get_cpu_info()
    name = str(info.get("brand_raw") or platform.processor() or platform.machine())
    flags = {str(f).lower() for f in info.get("flags", [])}
    if not flags and Path("/proc/cpuinfo").exists():  # py-cpuinfo found none (unusual kernels): read them by hand
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("flags", "Features"):
                flags = set(value.split())
                break
    flags = {_FLAG_ALIASES.get(f, f) for f in flags}
    return name, tuple(f for f in CPU_FLAGS if f in flags)


@functools.cache
def cpu_model_id() -> str | None:
    """The CPU's family and model numbers (``family 25 model 1``: an AMD Zen 3): virtual machines often hide the
    model name, and two chips of one machine class can differ in speed (recorded, not part of the class)."""
    import cpuinfo

    info = cpuinfo.get_cpu_info()
    family, model = info.get("family"), info.get("model")
    return f"family {family} model {model}" if family is not None and model is not None else None


def cpus_available() -> int:
    """The CPUs this process may run on (its affinity mask on Linux, else every logical CPU)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


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
        "arch": platform.machine().lower(),
        "cpu_flags": list(flags),
        "cpu_model_id": cpu_model_id(),
        "physical_cores": psutil.cpu_count(logical=False),
        "logical_cores": os.cpu_count(),
        "threads": threads,
        "gpu": _gpu(),
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "libraries": {name: _version(name) for name in LIBRARIES},
    }


def machine_class(e: dict[str, Any]) -> str:
    """The key of ``e``'s machine class: a readable name of what decides speed (architecture, ISA features, CPUs,
    threads, GPU, torch and ONNX Runtime versions) and a short digest of it. Two environments of one class
    compare speed figures; the CPU model may differ (the speed probe absorbs a faster or slower chip)."""
    libs = e.get("libraries") or {}
    parts = [str(e.get("arch") or "unknown"), "+".join(e.get("cpu_flags") or []) or "noflags",
             f"{e.get('logical_cores')}cpu", f"{e.get('threads')}t", str(e.get("gpu") or "nogpu").replace(" ", "_"),
             *(f"{lib}{libs.get(lib)}" for lib in CLASS_LIBRARIES)]
    text = "-".join(parts)
    return f"{text}-{hashlib.sha256(text.encode()).hexdigest()[:6]}"


def class_difference(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """What puts ``a`` and ``b`` in different classes (empty when they share one)."""
    diff = [k for k in CLASS_KEYS if a.get(k) != b.get(k)]
    la, lb = a.get("libraries") or {}, b.get("libraries") or {}
    return diff + [lib for lib in CLASS_LIBRARIES if la.get(lib) != lb.get(lib)]


def comparable_scopes(a: dict[str, Any], b: dict[str, Any]) -> frozenset[Scope]:
    """Which baseline figures taken on ``a`` still mean something on ``b``: artifact figures anywhere; speed
    (speedups, probe-normalised latency) within the same machine class."""
    scopes = {Scope.ANYWHERE}
    if machine_class(a) == machine_class(b):
        scopes.add(Scope.SAME_CLASS)
    return frozenset(scopes)


def describe(e: dict[str, Any]) -> str:
    """One line naming what speed depends on: CPU, its features, threads, GPU, torch and ONNX Runtime."""
    libs = e.get("libraries", {})
    flags = ",".join(e.get("cpu_flags", [])) or "none of " + ",".join(CPU_FLAGS[:3])
    gpu = f", GPU {e['gpu']}" if e.get("gpu") else ""
    return (f"{e.get('cpu')} [{flags}], {e.get('logical_cores')} CPUs, {e.get('threads')} thread(s){gpu}; "
            f"torch {libs.get('torch')}, onnxruntime {libs.get('onnxruntime')}")
