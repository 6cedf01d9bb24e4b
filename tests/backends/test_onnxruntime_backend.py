"""ONNX Runtime on the CPU: exports torch artifacts through the cache, runs ONNX files, matches torch eager."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from harness.artifact import Artifact, ArtifactKind, Precision, onnx_size_bytes
from harness.backends.onnxruntime import OnnxRuntime
from harness.errors import BackendUnavailable
from harness.onnx_export import cached_export


def test_runs_torch_module_by_exporting_it(toy, bctx, module_cache):
    runner = OnnxRuntime(bctx).prepare(toy.artifact(), toy.inputs(1), toy.input_names)
    exported = list((module_cache.root / "onnx").glob("*.onnx"))
    assert exported, "the export should be in the cache"
    np.testing.assert_allclose(runner(toy.inputs(7)), toy.expected(7), rtol=1e-4, atol=1e-5)
    assert runner.size_bytes in {onnx_size_bytes(p) for p in exported}


def test_runs_onnx_artifact_with_session_settings(make_toy, bctx):
    toy = make_toy("mlp")
    first = OnnxRuntime(bctx).prepare(toy.artifact(), toy.inputs(2), toy.input_names)
    path = cached_export(toy.artifact().key, toy.module, toy.inputs(2), toy.input_names, bctx.cache)  # cache hit
    artifact = Artifact(ArtifactKind.ONNX_MODEL, Precision.FP32, key="onnx-mlp", onnx_path=path)
    runner = OnnxRuntime(bctx).prepare(artifact, toy.inputs(2), toy.input_names)
    np.testing.assert_allclose(runner(toy.inputs(3)), first(toy.inputs(3)), rtol=1e-6)
    options = runner.session.get_session_options()
    assert options.intra_op_num_threads == 1 and options.inter_op_num_threads == 1
    assert options.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    assert (runner.backend, runner.device, runner.size_bytes) == ("onnxruntime", "cpu", onnx_size_bytes(path))


def test_feeds_integer_inputs_by_name(make_toy, bctx):
    toy = make_toy("embedder")
    runner = OnnxRuntime(bctx).prepare(toy.artifact(), toy.inputs(2), toy.input_names)
    assert [i.type for i in runner.session.get_inputs()] == ["tensor(int64)", "tensor(int64)"]
    np.testing.assert_allclose(runner(toy.inputs(4)), toy.expected(4), rtol=1e-4, atol=1e-5)


def test_refuses_bf16_modules(make_toy, bctx):
    toy = make_toy("mlp")
    with pytest.raises(BackendUnavailable, match="onnxruntime cannot run a bf16 torch_module"):
        OnnxRuntime(bctx).prepare(toy.artifact(Precision.BF16), toy.inputs(2), toy.input_names)


def test_reports_missing_onnxruntime(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnxruntime" else real(name, *a))
    availability = OnnxRuntime.availability()
    assert not availability.ok and availability.reason == "onnxruntime is not installed"
