"""Gradient clipping: each method bounds what it promises, and divergence is told from a spike."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from harness.errors import ConfigError
from harness.techniques.gradient_clipping import GradientClipping, GradientClippingConfig, adaptive_clip_, diverged
from harness.training import TrainingStats


def model_with_grads(scale: float) -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    for p in model.parameters():
        p.grad = torch.randn_like(p) * scale
    return model


def total_norm(model: nn.Module) -> float:
    return float(torch.nn.utils.get_total_norm([p.grad for p in model.parameters()]))


def test_norm_clipping_bounds_the_total_norm():
    model = model_with_grads(100.0)
    GradientClipping("norm", 1.0).after_backward(model)
    assert total_norm(model) == pytest.approx(1.0, rel=1e-4)


def test_value_clipping_bounds_every_element():
    model = model_with_grads(100.0)
    GradientClipping("value", 0.1).after_backward(model)
    assert max(float(p.grad.abs().max()) for p in model.parameters()) <= 0.1 + 1e-7


def test_adaptive_clipping_bounds_each_units_ratio_and_leaves_small_gradients():
    w = nn.Parameter(torch.tensor([[3.0, 4.0], [0.3, 0.4]]))  # unit norms 5 and 0.5
    w.grad = torch.tensor([[30.0, 40.0], [0.003, 0.004]])  # ratios 10 and 0.01
    adaptive_clip_([w], clipping=0.1)
    assert float(w.grad[0].norm()) == pytest.approx(0.5, rel=1e-4)  # 0.1 × 5
    assert torch.allclose(w.grad[1], torch.tensor([0.003, 0.004]))


def test_divergence_is_a_non_finite_loss_or_a_loss_far_above_the_first_epochs():
    assert diverged(TrainingStats(first_loss=0.5, train_loss=[0.5, 6.0, 0.4]), factor=10.0)
    assert not diverged(TrainingStats(first_loss=0.5, train_loss=[0.5, 4.0, 0.4]), factor=10.0)
    assert diverged(TrainingStats(first_loss=0.5, train_loss=[0.5, math.inf]), factor=10.0)
    assert diverged(TrainingStats(diverged=True), factor=10.0)


@pytest.mark.parametrize(("field", "value", "message"), [
    ("threshold", 0.0, r"`threshold` \(max_norm, clip value or ratio\) must be > 0"),
    ("threshold", -1.0, "`threshold`"),
    ("method", "l1", "`method` must be one of norm, value, adaptive"),
    ("regime", "wild", "`regime` must be one of diverging, converging"),
    ("divergence_factor", 1.0, "`divergence_factor` must be > 1"),
])
def test_bad_values_name_the_field(field, value, message):
    with pytest.raises(ConfigError, match=message):
        GradientClippingConfig(name="clip", **{field: value})
