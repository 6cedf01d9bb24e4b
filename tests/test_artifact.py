"""Artifact helpers: the weights digest that tells the gate whether two runs used the same reference."""

from __future__ import annotations

import copy

import torch

from harness.artifact import weights_digest
from tests.toy_models import MLP


def test_digest_is_a_function_of_the_weights_only():
    torch.manual_seed(0)
    a = MLP(4, 8, 2)
    assert weights_digest(a) == weights_digest(copy.deepcopy(a))
    torch.manual_seed(0)
    assert weights_digest(MLP(4, 8, 2)) == weights_digest(a)  # rebuilt with the same seed: same weights


def test_digest_changes_with_one_weight_dtype_or_shape():
    torch.manual_seed(0)
    a = MLP(4, 8, 2)
    b = copy.deepcopy(a)
    with torch.no_grad():
        b.net[0].weight[0, 0] += 1e-6
    assert weights_digest(b) != weights_digest(a)
    assert weights_digest(copy.deepcopy(a).double()) != weights_digest(a)
    torch.manual_seed(0)
    assert weights_digest(MLP(4, 8, 3)) != weights_digest(a)


def test_digest_covers_zero_dim_and_empty_buffers():
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2))  # num_batches_tracked is 0-d
    before = weights_digest(net)
    net[1].num_batches_tracked += 1
    assert weights_digest(net) != before


def test_measured_record_carries_the_reference_digest_and_machine_choices(tmp_path, monkeypatch):
    from harness.cache import Cache
    from harness.case import Case
    from harness.measure import Settings, measure_case, reference_outputs
    from harness.techniques import Context, presets
    from tests.techniques.conftest import build_reference

    monkeypatch.setattr("harness.techniques._ort_quant.saturates_u8s8", lambda: True)
    ref = build_reference("mlp")
    case = Case("quantization", ref.spec.name, presets("quantization").get("ort_dynamic_int8_per_channel"),
                "onnxruntime")
    record = measure_case(case, ref, reference_outputs(ref), Settings(1, 0.01, 0.01), Context(Cache(tmp_path), 1),
                             timer=lambda fn: [1e-3])
    assert record.identity == {"weights": weights_digest(ref.module), "reduce_range": "true"}
    assert record.to_dict()["identity"] == record.identity
