"""GPTQ rounding: lower output error than nearest on fresh inputs, ORT's grid kept, silent inputs left alone, layer
inputs that reproduce the convolution, and the config's file re-rounded in place."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from harness.techniques import _gptq, apply
from harness.techniques.quantization import OrtStaticInt8Config, weight_grid


def _correlated(n: int, gen: torch.Generator) -> torch.Tensor:
    mix = torch.randn(64, 64, generator=torch.Generator().manual_seed(7)) * torch.logspace(0, -2, 64)
    return torch.randn(n, 64, generator=gen, dtype=torch.float64) @ mix.double()


def _case() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    w = torch.randn(16, 64, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    scale = w.abs().amax(1) / 64
    x = _correlated(4000, torch.Generator().manual_seed(2))
    return w, scale, torch.zeros(16, dtype=torch.float64), x.T @ x


def _nearest(w: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return torch.clamp(torch.round(w / scale[:, None]), -64, 64)


def test_gptq_lowers_the_output_error_on_fresh_inputs():
    w, scale, zp, h = _case()
    fresh = _correlated(4000, torch.Generator().manual_seed(3))
    fresh_h = fresh.T @ fresh
    gptq = _gptq._gptq(w, h, scale, zp, -64, 64, 0.01)
    nearest = _gptq._error(w, _nearest(w, scale), scale, zp, fresh_h)
    assert _gptq._error(w, gptq, scale, zp, fresh_h) < 0.5 * nearest


def _plain_column_loop(w: torch.Tensor, inv_upper: torch.Tensor, scale: torch.Tensor, zp: torch.Tensor,
                       ) -> torch.Tensor:
    """GPTQ's loop as the paper states it: after each column, the whole rest of the weight moves."""
    w, q = w.clone(), torch.empty_like(w)
    for j in range(w.shape[1]):
        q[:, j] = torch.clamp(torch.round(w[:, j] / scale) + zp, -64, 64)
        pivot = inv_upper[:, j, j] if inv_upper.ndim == 3 else inv_upper[j, j]
        err = (w[:, j] - (q[:, j] - zp) * scale) / pivot
        w[:, j + 1:] -= err[:, None] * (inv_upper[:, j, j + 1:] if inv_upper.ndim == 3 else inv_upper[j, j + 1:])
    return q


@pytest.mark.parametrize("per_row", [False, True], ids=["shared H", "H per row"])
@pytest.mark.parametrize("block", [1, 5, 64, 128])
def test_lazy_batches_round_as_the_plain_column_loop(monkeypatch, block, per_row):
    w, scale, zp, h = _case()
    if per_row:
        h = torch.stack([h * (r + 1) for r in range(16)])
    inv_upper = _gptq._inverse_upper(h, 0.01)
    monkeypatch.setattr(_gptq, "BLOCK", block)
    q = _gptq._round_columns(w, inv_upper, scale, zp, -64, 64)
    assert torch.equal(q, _plain_column_loop(w, inv_upper, scale, zp))
    assert not torch.equal(q, _nearest(w, scale))  # errors were carried


def test_gptq_keeps_ort_grid():
    w, scale, zp, h = _case()
    q = _gptq._gptq(w, h, scale, zp, -64, 64, 0.01)
    assert torch.equal(q, q.round()) and q.min() >= -64 and q.max() <= 64
    assert not torch.equal(q, _nearest(w, scale))  # it did re-round


def test_input_columns_silent_in_calibration_keep_their_nearest_rounding():
    w, scale, zp, h = _case()
    h[3, :] = 0
    h[:, 3] = 0  # column 3 never lit: nothing says how to compensate through it
    q = _gptq._gptq(w, h, scale, zp, -64, 64, 0.01)
    assert torch.equal(q[:, 3], _nearest(w, scale)[:, 3])
    assert (q[:, 3] != 0).any()


def test_depthwise_rows_each_fit_their_own_inputs():
    w, scale, zp, _ = _case()
    x = _correlated(800, torch.Generator().manual_seed(4))[:, :9]
    h = torch.stack([(x * (r + 1)).T @ (x * (r + 1)) for r in range(16)])  # (rows, 9, 9)
    q = _gptq._gptq(w[:, :9], h, scale, zp, -64, 64, 0.01)
    fresh = _correlated(800, torch.Generator().manual_seed(5))[:, :9]
    fresh_h = torch.stack([(fresh * (r + 1)).T @ (fresh * (r + 1)) for r in range(16)])
    near = _gptq._error(w[:, :9], _nearest(w[:, :9], scale), scale, zp, fresh_h)
    assert _gptq._error(w[:, :9], q, scale, zp, fresh_h) < near


def _conv_layer(weight: np.ndarray, **attrs: object) -> _gptq._Layer:
    node = helper.make_node("Conv", ["x", "w"], ["y"], **attrs)
    shaped = _gptq._shape(node, weight)
    assert shaped is not None
    rows, unrows, depthwise = shaped
    return _gptq._Layer(node, weight, "w_quantized", rows, unrows, np.ones(weight.shape[0]),
                        np.zeros(weight.shape[0]), depthwise)


@pytest.mark.parametrize("group", [1, 6])
def test_layer_inputs_reproduce_the_convolution(group):
    """Stride 2 and asymmetric padding (ONNX pads: top 0, left 1, bottom 1, right 0), as TF-style "same" padding
    makes in EfficientNet-Lite0."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 6, 9, 9, generator=gen)
    weight = torch.randn(6 if group > 1 else 4, 6 // group, 3, 3, generator=gen)
    layer = _conv_layer(weight.numpy(), group=group, strides=[2, 2], pads=[0, 1, 1, 0], kernel_shape=[3, 3])
    want = torch.nn.functional.conv2d(torch.nn.functional.pad(x, (1, 0, 0, 1)), weight, stride=2, groups=group)
    cols = _gptq._layer_input(x, layer)
    w = torch.from_numpy(layer.rows(weight.numpy()))
    if layer.depthwise:
        got = torch.einsum("csk,ck->cs", cols, w).reshape(6, 2, -1).permute(1, 0, 2)
    else:
        got = (cols @ w.T).reshape(2, -1, w.shape[0]).permute(0, 2, 1)
    torch.testing.assert_close(got, want.flatten(2), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(("weight_type", "reduce_range"), [("QInt8", False), ("QInt8", True), ("QUInt8", False),
                                                           ("QUInt8", True)])
def test_weight_grid_is_the_one_ort_quantizes_to(weight_type, reduce_range):
    from onnxruntime.quantization.quant_utils import get_qmin_qmax_for_qType

    qtype = TensorProto.INT8 if weight_type == "QInt8" else TensorProto.UINT8
    want = get_qmin_qmax_for_qType(qtype, reduce_range=reduce_range, symmetric=weight_type == "QInt8")
    assert weight_grid(weight_type, reduce_range) == (int(want[0]), int(want[1]))


def test_views_add_crops_of_images_and_leave_other_inputs_alone():
    images = (torch.randn(5, 3, 16, 16, generator=torch.Generator().manual_seed(0)),)
    more = _gptq.views(images, 2)
    assert more[0].shape == (15, 3, 16, 16)
    assert torch.equal(more[0][:5], images[0]) and not torch.equal(more[0][5:10], images[0])
    assert torch.equal(_gptq.views(images, 2)[0], more[0])  # seeded
    tokens = (torch.zeros(4, 6, dtype=torch.int64), torch.ones(4, 6, dtype=torch.int64))
    assert _gptq.views(tokens, 2) is tokens
    assert _gptq.views(images, 0) is images


def _ints(path) -> dict[str, np.ndarray]:
    model = onnx.load(str(path))
    return {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}


def test_gptq_config_re_rounds_the_weights_of_the_nearest_file_on_its_grid(tctx, make_reference):
    ref = make_reference("cnn")
    nearest = OrtStaticInt8Config(name="near", op_types=None)
    gptq = OrtStaticInt8Config(name="gptq", op_types=None, weight_rounding="gptq")
    a, b = _ints(apply(ref, nearest, tctx).onnx_path), _ints(apply(ref, gptq, tctx).onnx_path)
    assert a.keys() == b.keys()
    weights = [k for k in a if k.endswith("_quantized") and a[k].dtype in (np.int8, np.uint8)]
    assert len(weights) == 3  # two convolutions and the head
    for name in weights:  # same grid: scales and zero points untouched, integers inside it
        base = name[: -len("_quantized")]
        np.testing.assert_array_equal(a[f"{base}_scale"], b[f"{base}_scale"])
        lo, hi = weight_grid("QInt8", gptq.resolved_reduce_range("QInt8"))
        assert b[name].min() >= lo and b[name].max() <= hi
    assert any(not np.array_equal(a[n], b[n]) for n in weights)


def test_a_model_without_a_validation_split_picks_its_rounding_on_the_calibration_inputs(tctx, make_reference):
    import dataclasses

    from model_zoo.spec import Split, Splits

    ref = make_reference("cnn")
    empty = Split(tuple(t[:0] for t in ref.splits.val.inputs), ref.splits.val.targets[:0])
    ref = dataclasses.replace(ref, splits=Splits(ref.splits.train, empty, ref.splits.test), key="toy-cnn-noval")
    gptq = OrtStaticInt8Config(name="gptq", op_types=None, weight_rounding="gptq")
    ints = _ints(apply(ref, gptq, tctx).onnx_path)
    assert sum(k.endswith("_quantized") and v.dtype == np.int8 and v.ndim > 1 for k, v in ints.items()) >= 2
