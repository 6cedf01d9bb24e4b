"""Counting under Valgrind: real Callgrind workers on tiny models (skipped with the reason where Valgrind is absent;
CI installs it)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from harness.cache import Cache
from harness.work import counter as counting
from harness.work.counter import Counter, CountError, Job
from harness.work.jobs import NotCounted, _save_inputs, _save_module, job_for

AVAILABLE = counting.availability()
needs_valgrind = pytest.mark.skipif(not AVAILABLE.ok, reason=f"work not counted here: {AVAILABLE.reason}")


def onnx_matmul(path, width=64):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.random.default_rng(0).standard_normal((width, width)).astype(np.float32), "w")
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"]), helper.make_node("Relu", ["y"], ["z"])],
                              "toy", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, width])],
                              [helper.make_tensor_value_info("z", TensorProto.FLOAT, [1, width])], [weight])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


@pytest.fixture
def job(tmp_path):
    path = onnx_matmul(tmp_path / "toy.onnx")
    inputs = tmp_path / "inputs.npz"
    np.savez(inputs, input0=np.ones((1, 64), np.float32))
    return Job("toy", "onnx", path, "digest", inputs, "inputs", ("x",), calls=100)


@needs_valgrind
def test_a_count_is_per_call_repeatable_and_cached(tmp_path, job):
    cache = Cache(tmp_path / "cache")
    with Counter(cache) as counter:
        fig = counter.count(job)
        env = counter.environment()
    assert fig.instructions > 1000 and fig.calls == 100 and fig.repeats == 3
    assert fig.spread < 0.02  # three windows in one process
    assert fig.estimated_cycles is not None and fig.estimated_cycles > fig.instructions
    assert env["presented_cpu"] and env["valgrind"].startswith("valgrind")
    with Counter(cache) as again:
        assert again.count(job) == fig and again.counted == 0  # read from the cache: no worker counted it


@needs_valgrind
def test_added_work_is_counted_as_added(tmp_path, job):
    import dataclasses

    with Counter(Cache(tmp_path / "cache")) as counter:
        base = counter.count(job).instructions
        plus5 = counter.count(dataclasses.replace(job, extra_every=20)).instructions
        plus20 = counter.count(dataclasses.replace(job, extra_every=5)).instructions
    assert plus5 / base == pytest.approx(1.05, abs=0.01)
    assert plus20 / base == pytest.approx(1.20, abs=0.01)


@needs_valgrind
def test_a_model_the_worker_cannot_load_fails_that_job_only(tmp_path, job):
    import dataclasses

    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with Counter(Cache(tmp_path / "cache")) as counter:
        with pytest.raises(CountError, match=r"^bad: not counted: .*") as info:
            counter.count(dataclasses.replace(job, name="bad", path=bad, digest="bad"))
        assert "\n" not in str(info.value)
        assert counter.count(job).instructions > 0  # the worker goes on


@needs_valgrind
def test_a_torch_module_is_counted_in_the_torch_worker(tmp_path):
    cache = Cache(tmp_path / "cache")
    path, digest = _save_module(torch.nn.Sequential(torch.nn.Linear(16, 16), torch.nn.ReLU()).eval(), cache)

    class Spec:
        @staticmethod
        def example_inputs(n):
            return (torch.ones(n, 16),)

    inputs, inputs_digest = _save_inputs(Spec, cache)  # type: ignore[arg-type]
    with Counter(cache) as counter:
        fig = counter.count(Job("lin", "torch", path, digest, inputs, inputs_digest, ("x",), calls=5))
    assert fig.instructions > 0 and fig.calls == 5


def test_a_module_that_cannot_be_saved_is_not_counted_with_the_reason(tmp_path):
    class Local(torch.nn.Module):  # a class defined in a function cannot be pickled
        def forward(self, x):
            return x

    with pytest.raises(NotCounted, match=r"the module cannot be saved for the counting process .*expected a "
                                         r"picklable nn\.Module"):
        _save_module(Local(), Cache(tmp_path))


def test_a_bf16_artifact_is_not_counted_since_valgrind_would_run_its_emulated_path(tmp_path):
    from harness.artifact import Artifact, ArtifactKind, Precision
    from model_zoo.spec import MODELS

    bf16 = Artifact(ArtifactKind.TORCH_MODULE, Precision.BF16, "k", module=torch.nn.Linear(4, 4).bfloat16())
    with pytest.raises(NotCounted, match=r"^bf16: Valgrind presents a CPU without bf16 instructions"):
        job_for("m-bf16-torch_eager", "torch_eager", bf16, MODELS.get("cancer_mlp"), Cache(tmp_path))


def test_without_valgrind_counting_is_unavailable_with_the_reason(monkeypatch):
    monkeypatch.setattr(counting.platform, "system", lambda: "Linux")
    monkeypatch.setattr(counting.platform, "machine", lambda: "x86_64")
    monkeypatch.setattr(counting.shutil, "which", lambda name: None)
    found = counting.availability()
    assert not found.ok and found.reason == "valgrind is not on PATH (Debian: apt-get install valgrind)"
    monkeypatch.setattr(counting.platform, "machine", lambda: "aarch64")
    assert "counting runs on Linux x86-64" in counting.availability().reason


def test_the_worker_pins_pythons_string_hashing_whatever_the_caller_has(monkeypatch):
    from harness.work.counter import worker_environment

    monkeypatch.setenv("PYTHONHASHSEED", "random")
    env = worker_environment()
    assert env["PYTHONHASHSEED"] == "0" and env["PYTHONPATH"]
