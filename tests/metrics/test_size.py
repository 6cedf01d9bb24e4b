"""Parameter and non-zero counts of torch modules (packed int8 weights included) and ONNX initializers."""

import onnx
import pytest
import torch
from onnx import helper, numpy_helper
from torch import nn

from harness.metrics.size import onnx_param_counts, torch_param_counts


def test_dense_counts_and_zeros():
    lin = nn.Linear(4, 3)
    with torch.no_grad():
        lin.weight[0].zero_()
    assert torch_param_counts(lin) == (15, 11)


@pytest.mark.filterwarnings("ignore:torch.ao.quantization is deprecated:DeprecationWarning")
@pytest.mark.filterwarnings("ignore:torch.quantize_per_tensor, torch.quantize_per_channel:UserWarning")
def test_packed_int8_weights_of_a_dynamic_quantized_linear_are_counted():
    model = nn.Sequential(nn.Linear(8, 4))
    quantized = torch.ao.quantization.quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8)
    total, nonzero = torch_param_counts(quantized)
    assert total >= 32 and nonzero >= 1  # the 4x8 weight lives in a packed param, not in parameters()
    assert sum(p.numel() for p in quantized.parameters()) < 32


def test_onnx_initializers_counted_without_scales(tmp_path):
    import numpy as np

    weight = numpy_helper.from_array(np.array([[1.0, 0.0], [2.0, 3.0]], dtype=np.float32), "w")
    scale = numpy_helper.from_array(np.array(0.5, dtype=np.float32), "scale")
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 2])],
                              [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 2])],
                              initializer=[weight, scale])
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph), str(path))
    assert onnx_param_counts(path) == (4, 3)
