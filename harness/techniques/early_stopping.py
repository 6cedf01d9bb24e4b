"""Early stopping: stop training when a validation figure stops improving, and keep the best epoch's weights.

Measured against the same model trained to the fixed maximum of epochs on the same data and seeds, in a regime
of the zoo that really overfits when trained that long (the breast-cancer MLP without weight decay: its
validation loss is lowest within the first ten epochs and climbs after).
"""

from __future__ import annotations

import copy
import dataclasses
import math
from typing import ClassVar, Literal

import torch
from torch import nn

from harness.config import require_choice, require_int, require_range
from harness.errors import ConfigError
from harness.gate import Expectation
from harness.techniques.base import Context, register_preset, register_technique
from harness.techniques.training import CONTROL_ARM, TECHNIQUE_ARM, Arm, TrainingConfig, TrainingOutcome, apply_training
from harness.training import Hook, TrainingStats
from model_zoo.reference import Reference

MONITORS = ("val_loss", "val_quality")


class EarlyStopping(Hook):
    """Stop after ``patience`` epochs without an improvement larger than ``min_delta`` (Keras's semantics: an
    improvement of exactly ``min_delta`` does not count); stop at once on a non-finite monitored value."""

    name = "early_stopping"

    def __init__(self, monitor: str, mode: str, patience: int, min_delta: float, restore_best_weights: bool) -> None:
        self.monitor, self.mode, self.patience, self.min_delta = monitor, mode, patience, min_delta
        self.restore_best_weights = restore_best_weights
        self.best = math.inf if mode == "min" else -math.inf
        self.best_epoch = -1
        self.best_state: dict[str, torch.Tensor] | None = None
        self.wait = 0
        self.stopped_on_non_finite = False

    def improved(self, value: float) -> bool:
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def end_epoch(self, epoch: int, stats: TrainingStats, model: nn.Module) -> bool:
        value = (stats.val_loss if self.monitor == "val_loss" else stats.val_quality)[-1]
        if not math.isfinite(value):
            self.stopped_on_non_finite = True
            return True
        if self.best_epoch < 0 or self.improved(value):
            self.best, self.best_epoch, self.wait = value, epoch, 0
            stats.best_epoch = epoch
            if self.restore_best_weights:
                self.best_state = copy.deepcopy(model.state_dict())
            return False
        self.wait += 1
        return self.wait >= self.patience

    def finish(self, model: nn.Module) -> nn.Module:
        if self.restore_best_weights and self.best_state is not None:
            model.load_state_dict(self.best_state)
        return model


@dataclasses.dataclass(frozen=True)
class EarlyStoppingConfig(TrainingConfig):
    """Train up to ``max_epochs`` (without weight decay: the overfitting regime) and stop early.

    Contract: at least ``min_epochs_saved`` of the control's epochs saved, at a quality loss of at most
    ``max_quality_loss`` (absolute, test accuracy), both on the mean over seeds.
    """

    monitor: str = "val_loss"
    mode: Literal["min", "max"] = "min"
    patience: int = 10
    min_delta: float = 0.0
    restore_best_weights: bool = True
    max_epochs: int = 150
    weight_decay: float = 0.0
    min_epochs_saved: float = 0.4
    max_quality_loss: float = 0.005
    technique: ClassVar[str] = "early_stopping"

    def validate(self) -> None:
        super().validate()
        require_choice("monitor", self.monitor, MONITORS)
        require_choice("mode", self.mode, ("min", "max"))
        require_int("patience", self.patience, 0)
        if not self.min_delta >= 0:
            raise ConfigError(f"`min_delta` must be >= 0, got {self.min_delta!r}")
        require_int("max_epochs", self.max_epochs, 1)
        require_range("min_epochs_saved", self.min_epochs_saved, 0.0, 1.0)
        require_range("max_quality_loss", self.max_quality_loss, 0.0, 1.0)

    def hook(self) -> EarlyStopping:
        return EarlyStopping(self.monitor, self.mode, self.patience, self.min_delta, self.restore_best_weights)

    def arms(self, reference: Reference, ctx: Context) -> dict[str, Arm]:
        spec = reference.spec
        assert spec.recipe is not None
        recipe = dataclasses.replace(spec.recipe, epochs=self.max_epochs, weight_decay=self.weight_decay)
        return {
            TECHNIQUE_ARM: Arm(spec.build, recipe, reference.splits, hooks=lambda seed: [self.hook()]),
            CONTROL_ARM: Arm(spec.build, recipe, reference.splits),
        }

    def summary(self, outcome: TrainingOutcome) -> dict[str, float]:
        tech, ctrl = outcome.arms[TECHNIQUE_ARM].stats, outcome.arms[CONTROL_ARM].stats
        epochs = sum(s.epochs_run for s in tech) / len(tech)
        tech_wall, ctrl_wall = sum(s.wall_s for s in tech), sum(s.wall_s for s in ctrl)
        return {
            "epochs_run": epochs,
            "max_epochs": float(self.max_epochs),
            "epochs_saved": 1.0 - epochs / self.max_epochs,
            "wall_saved": 1.0 - tech_wall / ctrl_wall if ctrl_wall > 0 else math.nan,
            "best_epoch": sum(s.best_epoch for s in tech) / len(tech),
            "control_best_epoch": sum(s.best_epoch for s in ctrl) / len(ctrl),
        }

    def expectations(self) -> list[Expectation]:
        return [
            Expectation("epochs_saved", "training.epochs_saved", ">=", self.min_epochs_saved),
            Expectation("quality_vs_control", "training.effect.mean", ">=", -self.max_quality_loss),
        ]


register_technique(EarlyStoppingConfig)(apply_training)

SUITE = "early_stopping"
register_preset(
    SUITE, EarlyStoppingConfig(name="early_stopping_val_loss", models=("cancer_mlp",), seeds=(0, 1, 2, 3, 4))
)
