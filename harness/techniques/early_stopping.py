"""Early stopping: stop training when a validation figure stops improving, and keep the best epoch's weights.

Measured against the same model trained to the maximum of epochs on the same data and seeds, in a regime set
from the model's own recipe where overfitting shows: ``epochs_factor`` times its epochs, without weight decay (the
breast-cancer MLP's validation loss is lowest within the first ten of 150 epochs and climbs after).
"""

from __future__ import annotations

import copy
import dataclasses
import math
from typing import ClassVar, Literal

import torch
from torch import nn

from harness.config import require_choice, require_int, require_range
from harness.core import Expectation
from harness.errors import ConfigError
from harness.techniques.base import Context, ReportFigure, register_preset, register_technique
from harness.techniques.training import CONTROL_ARM, TECHNIQUE_ARM, Arm, TrainingConfig, TrainingOutcome, apply_training
from harness.training import Hook, TrainingStats
from model_zoo.reference import Reference
from model_zoo.spec import TrainRecipe

MONITORS = ("val_loss", "val_quality")
MODES = {"val_loss": "min", "val_quality": "max"}  # the direction in which each monitored figure improves


def best_epoch(stats: TrainingStats, monitor: str) -> int:
    """The 0-based epoch where ``monitor`` was best (-1 without a finite value): one monitor for both arms."""
    values = stats.val_loss if monitor == "val_loss" else stats.val_quality
    finite = [(v, i) for i, v in enumerate(values) if math.isfinite(v)]
    if not finite:
        return -1
    return (min(finite) if MODES[monitor] == "min" else max(finite, key=lambda p: (p[0], -p[1])))[1]


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
    """Train up to ``max_epochs`` (None: ``epochs_factor`` × the model's recipe) without weight decay — the
    overfitting regime — and stop early. ``mode`` follows from ``monitor`` (loss: min, quality: max).

    Contract: at least ``min_epochs_saved`` of the control's epochs saved (the proof that it acted: a stop that
    never fires saves nothing), at a test-accuracy loss of at most ``max_quality_loss``, judged on the interval of
    the paired difference over seeds and test items.
    """

    monitor: str = "val_loss"
    mode: Literal["min", "max"] | None = None
    patience: int = 10
    min_delta: float = 0.0
    restore_best_weights: bool = True
    max_epochs: int | None = None
    epochs_factor: float = 5.0
    weight_decay: float = 0.0
    min_epochs_saved: float = 0.4
    max_quality_loss: float = 0.005
    technique: ClassVar[str] = "early_stopping"
    report_figures: ClassVar[tuple[ReportFigure, ...]] = (
        ReportFigure("training.epochs_saved", "epochs saved", "{:.0%}"),
        ReportFigure("training.wall_saved", "time saved", "{:.0%}"),
        ReportFigure("training.best_epoch", "best epoch", "{:.1f}"),
    )
    report_plots: ClassVar[tuple[str, ...]] = ()

    def validate(self) -> None:
        super().validate()
        require_choice("monitor", self.monitor, MONITORS)
        if self.mode is not None:
            require_choice("mode", self.mode, ("min", "max"))
            if self.mode != MODES[self.monitor]:
                raise ConfigError(f"`mode` {self.mode!r} contradicts `monitor` {self.monitor!r}, which improves "
                                  f"towards {MODES[self.monitor]!r}; leave `mode` unset or set it to "
                                  f"{MODES[self.monitor]!r}")
        require_int("patience", self.patience, 0)
        if not self.min_delta >= 0:
            raise ConfigError(f"`min_delta` must be >= 0, got {self.min_delta!r}")
        if self.max_epochs is not None:
            require_int("max_epochs", self.max_epochs, 1)
        require_range("epochs_factor", self.epochs_factor, 1.0, 100.0)
        require_range("min_epochs_saved", self.min_epochs_saved, 0.0, 1.0)
        require_range("max_quality_loss", self.max_quality_loss, 0.0, 1.0)

    def hook(self) -> EarlyStopping:
        return EarlyStopping(self.monitor, self.mode or MODES[self.monitor], self.patience, self.min_delta,
                             self.restore_best_weights)

    def epochs(self, recipe: TrainRecipe) -> int:
        """The maximum of epochs both arms train for on a model with ``recipe``."""
        return self.max_epochs or max(1, round(self.epochs_factor * recipe.epochs))

    def arms(self, reference: Reference, ctx: Context) -> dict[str, Arm]:
        spec = reference.spec
        assert spec.recipe is not None
        recipe = dataclasses.replace(spec.recipe, epochs=self.epochs(spec.recipe), weight_decay=self.weight_decay)
        return {
            TECHNIQUE_ARM: Arm(spec.build, recipe, reference.splits, hooks=lambda seed: [self.hook()]),
            CONTROL_ARM: Arm(spec.build, recipe, reference.splits),
        }

    def summary(self, outcome: TrainingOutcome) -> dict[str, float]:
        tech, ctrl = outcome.arms[TECHNIQUE_ARM].stats, outcome.arms[CONTROL_ARM].stats
        epochs = sum(s.epochs_run for s in tech) / len(tech)
        max_epochs = max(s.max_epochs for s in ctrl)
        tech_wall, ctrl_wall = sum(s.wall_s for s in tech), sum(s.wall_s for s in ctrl)
        # Both arms' best epoch by the technique's own monitor, so the two figures compare like with like.
        ctrl_best = sum(best_epoch(s, self.monitor) for s in ctrl) / len(ctrl)
        return {
            # The control overfitted early enough that a stop could save the claimed share: the regime exercises
            # early stopping on this model (a model still improving at the last epoch has nothing to stop).
            "regime_exercised": float(ctrl_best + 1 + self.patience <= (1 - self.min_epochs_saved) * max_epochs),
            "epochs_run": epochs,
            "max_epochs": float(max_epochs),
            "epochs_saved": 1.0 - epochs / max_epochs,
            "wall_saved": 1.0 - tech_wall / ctrl_wall if ctrl_wall > 0 else math.nan,
            "best_epoch": sum(best_epoch(s, self.monitor) for s in tech) / len(tech),
            "control_best_epoch": ctrl_best,
        }

    def expectations(self) -> list[Expectation]:
        given = ("training.regime_exercised", "the control's best epoch came too late for a stop to save "
                 f"{self.min_epochs_saved:.0%} of the epochs: the model did not overfit in this regime")
        return [
            Expectation("epochs_saved", "training.epochs_saved", ">=", self.min_epochs_saved, given=given),
            Expectation("quality_vs_control", "training.effect.mean", ">=", -self.max_quality_loss,
                        decision="interval", unit="seeds"),
        ]


register_technique(EarlyStoppingConfig)(apply_training)

SUITE = "early_stopping"
register_preset(SUITE, EarlyStoppingConfig(name="early_stopping_val_loss", seeds=(0, 1, 2, 3, 4)))
