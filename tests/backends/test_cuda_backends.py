"""CUDA backends: say why they cannot run where there is no GPU, and match the CPU where there is one."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from harness.artifact import Precision
from harness.backends import BACKENDS
from harness.backends.base import Availability
from harness.backends.onnxruntime_cuda import OnnxRuntimeCuda
from harness.backends.torch_eager_cuda import TorchEagerCuda
from harness.errors import BackendUnavailable

CUDA_BACKENDS = ["torch_eager_cuda", "torch_compile_cuda", "onnxruntime_cuda"]


@pytest.mark.parametrize("name", CUDA_BACKENDS)
def test_cuda_backends_declare_cuda_and_no_int8(name):
    backend = BACKENDS.get(name)
    assert backend.device == "cuda"
    assert Precision.FP16 in backend.precisions and Precision.INT8 not in backend.precisions


@pytest.mark.parametrize("name", CUDA_BACKENDS)
def test_unavailable_without_gpu_with_reason(name, make_toy, bctx):
    backend = BACKENDS.get(name)
    availability = backend.availability()
    if availability.ok:
        pytest.skip(f"{name} is available on this machine")
    assert availability.reason
    toy = make_toy("mlp")
    with pytest.raises(BackendUnavailable, match=f"^{name}: "):
        backend(bctx).prepare(toy.artifact(), toy.inputs(2), toy.input_names)


def test_torch_cuda_reason_when_driver_missing(monkeypatch):
    monkeypatch.setattr(torch.version, "cuda", "12.4")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert TorchEagerCuda.availability() == Availability(False, "torch.cuda.is_available() is False (no CUDA "
                                                                "device or driver)")


def test_ort_cuda_reason_names_the_missing_provider(monkeypatch):
    import onnxruntime as ort

    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CPUExecutionProvider"])
    availability = OnnxRuntimeCuda.availability()
    assert not availability.ok
    assert "no CUDAExecutionProvider" in availability.reason and "onnxruntime-gpu" in availability.reason


def test_ort_cuda_refuses_a_session_that_fell_back_to_cpu(monkeypatch, make_toy, bctx):
    """ORT quietly runs on the CPU when the CUDA provider fails to load; that must not pass for a GPU figure."""
    monkeypatch.setattr(OnnxRuntimeCuda, "availability", classmethod(lambda cls: Availability(True)))
    toy = make_toy("mlp")
    with pytest.warns(UserWarning, match="CUDAExecutionProvider"), \
            pytest.raises(BackendUnavailable, match="CUDAExecutionProvider failed to load"):
        OnnxRuntimeCuda(bctx).prepare(toy.artifact(), toy.inputs(2), toy.input_names)


def _gpu_cases() -> list:
    cases = []
    for name in CUDA_BACKENDS:
        availability = BACKENDS.get(name).availability()
        mark = pytest.mark.skipif(not availability.ok, reason=f"{name} unavailable: {availability.reason}")
        for precision in (Precision.FP32, Precision.FP16):
            cases.append(pytest.param(name, precision, marks=mark, id=f"{name}-{precision.value}"))
    return cases


@pytest.mark.parametrize(("name", "precision"), _gpu_cases())
def test_runs_on_gpu_like_cpu_eager(name, precision, make_toy, bctx):
    toy = make_toy("cnn")
    module = toy.module if precision is Precision.FP32 else copy.deepcopy(toy.module).to(torch.float16)
    runner = BACKENDS.get(name)(bctx).prepare(toy.artifact(precision, module), toy.inputs(2), toy.input_names)
    try:
        assert runner.device == "cuda"
        out = runner(toy.inputs(4))
        assert out.dtype == np.float32
        tol = 1e-3 if precision is Precision.FP32 else 2e-2
        np.testing.assert_allclose(out, toy.expected(4), atol=tol, rtol=tol)
        assert next(toy.module.parameters()).device.type == "cpu", "the caller's module must stay on the CPU"
    finally:
        runner.close()
