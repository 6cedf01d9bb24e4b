"""ONNX export: dynamic batch, one named output, cached and validated files, one-line reasons on failure."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper
from torch import nn

from harness.cache import Cache
from harness.errors import ExportError
from harness.onnx_export import OPSET, cached_export, count_ops, export_onnx, int8_op_count
from tests.toy_models import MLP


def Mlp() -> MLP:
    return MLP(4, 8, 2)


class DataDependent(nn.Module):
    """Python control flow on a tensor's value: torch.export cannot trace it."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.sum() > 0:
            return x * 2
        return x


@pytest.fixture(scope="module")
def mlp() -> nn.Module:
    torch.manual_seed(0)
    return Mlp().eval()


def test_export_has_dynamic_batch_one_output_and_opset(mlp, tmp_path):
    path = tmp_path / "m.onnx"
    export_onnx(mlp, (torch.randn(1, 4),), ["x"], path)  # batch 1 is doubled internally so the batch stays dynamic
    model = onnx.load(str(path))
    assert [o.name for o in model.graph.output] == ["output"]
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    assert {o.domain: o.version for o in model.opset_import}[""] == OPSET
    x = torch.randn(5, 4)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(session.run(None, {"x": x.numpy()})[0], mlp(x).detach().numpy(), rtol=1e-5, atol=1e-6)
    assert mlp.training is False


def test_export_keeps_half_precision(tmp_path):
    module = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU()).eval().half()
    export_onnx(module, (torch.randn(2, 1, 6, 6).half(),), ["x"], tmp_path / "h.onnx")
    model = onnx.load(str(tmp_path / "h.onnx"))
    assert model.graph.input[0].type.tensor_type.elem_type == TensorProto.FLOAT16


def test_export_failure_is_an_export_error_with_the_reason(tmp_path):
    with pytest.raises(ExportError, match=r"^ONNX export of DataDependent failed: GuardOnDataDependentSymNode: "
                                          r"Could not guard on data-dependent expression") as info:
        export_onnx(DataDependent(), (torch.randn(2, 4),), ["x"], tmp_path / "bad.onnx")
    assert "\n" not in str(info.value)


def test_export_refuses_mismatched_input_names(mlp, tmp_path):
    with pytest.raises(ExportError, match="2 input names for 1 inputs"):
        export_onnx(mlp, (torch.randn(2, 4),), ["x", "y"], tmp_path / "m.onnx")


def test_cached_export_exports_once(mlp, tmp_path, monkeypatch):
    cache = Cache(tmp_path)
    first = cached_export("mlp", mlp, (torch.randn(2, 4),), ["x"], cache)
    assert first.parent == tmp_path / "onnx"
    monkeypatch.setattr("harness.onnx_export.export_onnx", lambda *a: pytest.fail("exported again"))
    assert cached_export("mlp", mlp, (torch.randn(3, 4),), ["x"], cache) == first  # batch size is not in the key


def test_cached_export_key_follows_input_signature(mlp, tmp_path):
    cache = Cache(tmp_path)
    a = cached_export("mlp", mlp, (torch.randn(2, 4),), ["x"], cache)
    b = cached_export("mlp", mlp, (torch.randn(2, 4),), ["features"], cache)
    assert a != b


def test_corrupt_cached_export_is_rebuilt(mlp, tmp_path, caplog):
    cache = Cache(tmp_path)
    path = cached_export("mlp", mlp, (torch.randn(2, 4),), ["x"], cache)
    path.write_bytes(b"not an onnx model")
    assert cached_export("mlp", mlp, (torch.randn(2, 4),), ["x"], cache) == path
    onnx.checker.check_model(str(path))
    assert "unusable" in caplog.text


def _graph_file(tmp_path, ops: list[str]):
    nodes = [helper.make_node(op, ["a"], ["a"], name=f"n{i}") for i, op in enumerate(ops)]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("a", TensorProto.FLOAT, [1])], [])
    path = tmp_path / "g.onnx"
    onnx.save(helper.make_model(graph), str(path))
    return path


def test_count_ops_and_int8_ops(tmp_path):
    ops = ["DynamicQuantizeLinear", "MatMulInteger", "MatMulInteger", "QLinearConv", "QuantizeLinear",
           "DequantizeLinear", "MatMul", "Relu"]
    path = _graph_file(tmp_path, ops)
    assert count_ops(path)["MatMulInteger"] == 2
    assert int8_op_count(path) == 6  # every op except the float MatMul and Relu
