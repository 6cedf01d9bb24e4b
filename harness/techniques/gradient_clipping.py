"""Gradient clipping: by total norm, by value, and adaptive unit-wise clipping (Brock et al. 2021, NFNets).

Measured where training really diverges without it — the breast-cancer MLP trained with SGD (momentum 0.9) at a
learning rate of 0.5 blows up on every seed — and where it converges (the zoo's own recipe), so the table shows
both what clipping saves and what it costs.
"""

from __future__ import annotations

import dataclasses
import math
from typing import ClassVar

import torch
from torch import nn

from harness.config import require_choice, require_int
from harness.errors import ConfigError
from harness.gate import Expectation
from harness.techniques.base import Context, register_preset, register_technique
from harness.techniques.training import CONTROL_ARM, TECHNIQUE_ARM, Arm, TrainingConfig, TrainingOutcome, apply_training
from harness.training import Hook, TrainingStats
from model_zoo.reference import Reference
from model_zoo.spec import TrainRecipe

METHODS = ("norm", "value", "adaptive")


def unitwise_norm(x: torch.Tensor) -> torch.Tensor:
    """Norm of each output unit (row of a weight, or the whole of a bias/scalar), shaped to broadcast over ``x``."""
    if x.ndim <= 1:
        return x.norm(p=2)
    return x.norm(p=2, dim=tuple(range(1, x.ndim)), keepdim=True)


def adaptive_clip_(parameters: list[nn.Parameter], clipping: float, eps: float = 1e-3) -> None:
    """Adaptive gradient clipping: scale each unit's gradient so that ‖g‖/max(‖w‖, eps) ≤ ``clipping``."""
    with torch.no_grad():
        for p in parameters:
            if p.grad is None:
                continue
            max_norm = unitwise_norm(p).clamp_(min=eps) * clipping
            grad_norm = unitwise_norm(p.grad)
            scale = torch.where(grad_norm > max_norm, max_norm / grad_norm.clamp(min=1e-6), torch.ones_like(grad_norm))
            p.grad.mul_(scale)


class GradientClipping(Hook):
    """Clips gradients after ``backward()``, with torch's own functions where they exist."""

    name = "gradient_clipping"

    def __init__(self, method: str, threshold: float) -> None:
        self.method, self.threshold = method, threshold

    def after_backward(self, model: nn.Module) -> None:
        params = [p for p in model.parameters() if p.grad is not None]
        if self.method == "norm":
            torch.nn.utils.clip_grad_norm_(params, self.threshold)
        elif self.method == "value":
            torch.nn.utils.clip_grad_value_(params, self.threshold)
        else:
            adaptive_clip_(params, self.threshold)


def diverged(stats: TrainingStats, factor: float) -> bool:
    """A non-finite loss, or an epoch whose mean training loss exceeds ``factor`` × the first epoch's."""
    if stats.diverged:
        return True
    first = stats.first_loss
    return math.isfinite(first) and any(not math.isfinite(x) or x > factor * first for x in stats.train_loss)


@dataclasses.dataclass(frozen=True)
class GradientClippingConfig(TrainingConfig):
    """Clip by ``method`` at ``threshold`` (a norm, a value, or the adaptive ratio), trained with the recipe
    override (``optimizer``, ``lr``, ``epochs``) against the same training unclipped.

    ``regime`` "diverging": the contract is that clipping brings the divergence rate to 0 where the control
    diverges (at least ``min_control_divergence`` of its seeds). "converging": clipping costs at most
    ``max_quality_loss`` of test accuracy against a control that converges.
    """

    method: str = "norm"
    threshold: float = 1.0
    regime: str = "diverging"
    optimizer: str = "sgd"
    lr: float = 0.5
    epochs: int = 30
    divergence_factor: float = 10.0
    min_control_divergence: float = 0.5
    max_quality_loss: float = 0.01
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    technique: ClassVar[str] = "gradient_clipping"

    def validate(self) -> None:
        super().validate()
        require_choice("method", self.method, METHODS)
        if not self.threshold > 0:
            raise ConfigError(f"`threshold` (max_norm, clip value or ratio) must be > 0, got {self.threshold!r}")
        require_choice("regime", self.regime, ("diverging", "converging"))
        require_int("epochs", self.epochs, 1)
        if not self.divergence_factor > 1:
            raise ConfigError(f"`divergence_factor` must be > 1, got {self.divergence_factor!r}")

    def recipe(self, base: TrainRecipe) -> TrainRecipe:
        if self.regime == "converging":
            return base
        return dataclasses.replace(base, optimizer=self.optimizer, lr=self.lr, epochs=self.epochs)

    def arms(self, reference: Reference, ctx: Context) -> dict[str, Arm]:
        spec = reference.spec
        assert spec.recipe is not None
        recipe = self.recipe(spec.recipe)
        clip = lambda seed: [GradientClipping(self.method, self.threshold)]  # noqa: E731
        return {
            TECHNIQUE_ARM: Arm(spec.build, recipe, reference.splits, hooks=clip),
            CONTROL_ARM: Arm(spec.build, recipe, reference.splits),
        }

    def summary(self, outcome: TrainingOutcome) -> dict[str, float]:
        out: dict[str, float] = {}
        for arm, prefix in ((TECHNIQUE_ARM, ""), (CONTROL_ARM, "control_")):
            result = outcome.arms[arm]
            flags = [diverged(s, self.divergence_factor) for s in result.stats]
            converged = [q for q, d in zip(result.quality, flags, strict=True) if not d and math.isfinite(q)]
            out[f"{prefix}divergence_rate"] = sum(flags) / len(flags)
            out[f"{prefix}converged_quality"] = sum(converged) / len(converged) if converged else math.nan
            out[f"{prefix}max_grad_norm"] = max((max(s.grad_norm, default=0.0) for s in result.stats), default=0.0)
        return out

    def expectations(self) -> list[Expectation]:
        if self.regime == "diverging":
            return [
                Expectation("control_diverges", "training.control_divergence_rate", ">=", self.min_control_divergence),
                Expectation("no_divergence", "training.divergence_rate", "<=", 0.0),
            ]
        return [Expectation("quality_vs_control", "training.effect.mean", ">=", -self.max_quality_loss)]


register_technique(GradientClippingConfig)(apply_training)

SUITE = "gradient_clipping"
_ON = ("cancer_mlp",)
register_preset(SUITE, GradientClippingConfig(name="clip_norm_1", method="norm", threshold=1.0, models=_ON))
register_preset(SUITE, GradientClippingConfig(name="clip_value_0.05", method="value", threshold=0.05, models=_ON))
register_preset(SUITE, GradientClippingConfig(name="clip_adaptive_0.05", method="adaptive", threshold=0.05, models=_ON))
register_preset(SUITE, GradientClippingConfig(name="clip_norm_1_converging", method="norm", threshold=1.0,
                                              regime="converging", models=_ON))
