"""Torch eager and torch.compile on the CPU: same outputs as the module itself, honest metadata, clear refusals."""

from __future__ import annotations

import copy
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from harness.artifact import Artifact, ArtifactKind, Precision, state_dict_size_bytes
from harness.backends import BACKENDS
from harness.backends.torch_compile import TorchCompile
from harness.backends.torch_eager import TorchEager
from harness.errors import BackendUnavailable


def test_eager_matches_module_outputs(toy, bctx):
    runner = TorchEager(bctx).prepare(toy.artifact(), toy.inputs(2), toy.input_names)
    out = runner(toy.inputs(5))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, toy.expected(5), rtol=1e-5, atol=1e-6)


def test_eager_runner_reports_what_it_runs(make_toy, bctx):
    toy = make_toy("mlp")
    runner = TorchEager(bctx).prepare(toy.artifact(), toy.inputs(2), toy.input_names)
    assert (runner.backend, runner.device, runner.threads) == ("torch_eager", "cpu", 1)
    assert runner.size_bytes == state_dict_size_bytes(toy.module)
    assert runner.prepare_seconds >= 0


def test_bound_call_runs_without_grad_and_repeats(make_toy, bctx):
    toy = make_toy("mlp")
    runner = TorchEager(bctx).prepare(toy.artifact(), toy.inputs(2), toy.input_names)
    call = runner.bind(toy.inputs(3))
    first, second = call(), call()
    assert not first.requires_grad
    np.testing.assert_array_equal(runner.to_numpy(first), runner.to_numpy(second))


def test_eager_keeps_integer_inputs_integer(make_toy, bctx):
    toy = make_toy("embedder")
    runner = TorchEager(bctx).prepare(toy.artifact(), toy.inputs(2), toy.input_names)
    np.testing.assert_allclose(runner(toy.inputs(4)), toy.expected(4), rtol=1e-5, atol=1e-6)


def test_eager_casts_float_inputs_for_bf16_module(make_toy, bctx):
    toy = make_toy("cnn")
    half = copy.deepcopy(toy.module).to(torch.bfloat16)
    runner = TorchEager(bctx).prepare(toy.artifact(Precision.BF16, half), toy.inputs(2), toy.input_names)
    out = runner(toy.inputs(4))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, toy.expected(4), atol=0.1)


def test_eager_runs_dynamic_int8_module(make_toy, bctx):
    toy = make_toy("mlp")
    with warnings.catch_warnings():  # torch.ao.quantization's deprecation warnings
        warnings.simplefilter("ignore")
        quantized = torch.ao.quantization.quantize_dynamic(copy.deepcopy(toy.module), {torch.nn.Linear})
    runner = TorchEager(bctx).prepare(toy.artifact(Precision.INT8, quantized), toy.inputs(2), toy.input_names)
    np.testing.assert_allclose(runner(toy.inputs(4)), toy.expected(4), atol=0.05)


def test_eager_refuses_onnx_artifacts_saying_what_it_runs(bctx, tmp_path: Path):
    artifact = Artifact(ArtifactKind.ONNX_MODEL, Precision.INT8, key="k", onnx_path=tmp_path / "m.onnx")
    with pytest.raises(BackendUnavailable, match="torch_eager cannot run a int8 onnx_model artifact; it runs"):
        TorchEager(bctx).prepare(artifact, (torch.zeros(1, 8),), ("x",))


def test_compile_refuses_eager_quantized_modules():
    from harness.techniques.quantization import TorchDynamicInt8Config

    assert not TorchCompile.supports(TorchDynamicInt8Config(name="q"))
    assert TorchEager.supports(TorchDynamicInt8Config(name="q"))


def test_cpu_backends_do_not_take_fp16():
    from harness.techniques.quantization import HalfPrecisionConfig

    fp16 = HalfPrecisionConfig(name="h", dtype="fp16")
    assert [n for n, b in BACKENDS.items() if b.device == "cpu" and b.supports(fp16)] == []


def test_compile_matches_eager_and_times_compilation_outside_calls(make_toy, bctx):
    """One tiny model only: the first inductor compile of a process takes seconds."""
    toy = make_toy("mlp")
    runner = TorchCompile(bctx).prepare(toy.artifact(), toy.inputs(2), toy.input_names)
    assert runner.prepare_seconds > 0
    np.testing.assert_allclose(runner(toy.inputs(2)), toy.expected(2), rtol=1e-4, atol=1e-5)
    before = runner.prepare_seconds
    call = runner.bind(toy.inputs(5))  # a new shape compiles here, not in the timed call
    assert runner.prepare_seconds > before
    np.testing.assert_allclose(runner.to_numpy(call()), toy.expected(5), rtol=1e-4, atol=1e-5)
    assert toy.module.training is False and not isinstance(toy.module, torch._dynamo.eval_frame.OptimizedModule)


def test_compile_step_ignores_only_the_warnings_it_names():
    """Seen on an H100: inductor's TF32 advice, under -W error, failed every fp32 torch_compile_cuda case."""
    import warnings

    from harness.backends._torch_common import quiet_inductor

    tf32 = ("TensorFloat32 tensor cores for float32 matrix multiplication available but not enabled. Consider "
            "setting `torch.set_float32_matmul_precision('high')` for better performance.")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with quiet_inductor():
            warnings.warn(tf32, UserWarning, stacklevel=1)
            warnings.warn("`torch.jit.script_method` is deprecated", DeprecationWarning, stacklevel=1)
        with pytest.raises(UserWarning, match="something else"), quiet_inductor():
            warnings.warn("something else", UserWarning, stacklevel=1)


def test_compile_compiles_batch_one_first_and_each_batch_shape_once(make_toy, bctx):
    """Compiled code guards on whether an input is a view: the test split's slices and the timed inputs of the same
    shape once compiled twice, and the example's batch of 2 had a static compile that nothing timed used."""
    from torch._dynamo.utils import counters

    toy = make_toy("mlp")
    torch._dynamo.reset()  # code compiled by earlier tests for this toy class would serve these shapes
    counters.clear()
    runner = TorchCompile(bctx).prepare(toy.artifact(), toy.inputs(2), toy.input_names)
    assert counters["stats"]["unique_graphs"] == 1
    whole = toy.inputs(40)
    for start in (0, 16):  # slices of a larger tensor, as the test split's batches are
        runner(tuple(t[start:start + 16] for t in whole))
    runner.bind(toy.inputs(16))()
    runner.bind(toy.inputs(1))()
    runner.bind(toy.inputs(24))()
    assert counters["stats"]["unique_graphs"] == 2  # batch 1 static, then one for every larger batch
