"""Early stopping's edge semantics: min_delta, non-finite figures, patience, and the restored weights."""

from __future__ import annotations

import math

import pytest
import torch

from harness.artifact import weights_digest
from harness.errors import ConfigError
from harness.techniques.early_stopping import EarlyStopping, EarlyStoppingConfig
from harness.training import Hook, TrainingStats, fit
from model_zoo.spec import TrainRecipe
from tests.techniques.conftest import trainable_reference


def feed(hook: EarlyStopping, values: list[float]) -> list[bool]:
    """The stop decisions of ``hook`` for a sequence of monitored validation losses."""
    stats, model, out = TrainingStats(), torch.nn.Linear(1, 1), []
    for epoch, value in enumerate(values):
        stats.val_loss.append(value)
        out.append(hook.end_epoch(epoch, stats, model))
    return out


def test_an_improvement_of_exactly_min_delta_does_not_count():
    hook = EarlyStopping("val_loss", "min", patience=1, min_delta=0.25, restore_best_weights=False)
    assert feed(hook, [1.0, 0.75]) == [False, True]
    hook = EarlyStopping("val_loss", "min", patience=1, min_delta=0.25, restore_best_weights=False)
    assert feed(hook, [1.0, 0.7]) == [False, False] and hook.best_epoch == 1


def test_patience_counts_epochs_without_improvement():
    hook = EarlyStopping("val_loss", "min", patience=3, min_delta=0.0, restore_best_weights=False)
    assert feed(hook, [1.0, 0.9, 0.95, 0.95, 0.91]) == [False, False, False, False, True]
    assert hook.best_epoch == 1


def test_max_mode_watches_for_a_rising_figure():
    hook = EarlyStopping("val_quality", "max", patience=1, min_delta=0.0, restore_best_weights=False)
    stats, model = TrainingStats(), torch.nn.Linear(1, 1)
    decisions = []
    for epoch, q in enumerate([0.5, 0.6, 0.6]):
        stats.val_quality.append(q)
        decisions.append(hook.end_epoch(epoch, stats, model))
    assert decisions == [False, False, True]


def test_a_nan_figure_stops_at_once():
    hook = EarlyStopping("val_loss", "min", patience=10, min_delta=0.0, restore_best_weights=False)
    assert feed(hook, [1.0, math.nan]) == [False, True] and hook.stopped_on_non_finite


class Digests(Hook):
    name = "digests"

    def __init__(self) -> None:
        self.by_epoch: list[str] = []

    def end_epoch(self, epoch, stats, model):
        self.by_epoch.append(weights_digest(model))
        return False


def test_the_restored_weights_are_the_best_epochs():
    ref = trainable_reference()
    digests = Digests()
    stop = EarlyStopping("val_loss", "min", patience=3, min_delta=0.0, restore_best_weights=True)
    model, stats = fit(ref.spec.build, TrainRecipe(epochs=40, lr=0.1, batch_size=16), ref.splits, [digests, stop])
    assert stats.stop_reason == "hook:early_stopping" and stats.epochs_run < 40
    assert stats.best_epoch == stop.best_epoch == min(range(stats.epochs_run), key=stats.val_loss.__getitem__)
    assert stats.best_epoch < stats.epochs_run - 1  # the last epoch was not the best: restoring changed something
    assert weights_digest(model) == digests.by_epoch[stats.best_epoch]


@pytest.mark.parametrize(("field", "value", "message"), [
    ("patience", -1, "`patience` must be a whole number >= 0"),
    ("min_delta", -0.1, "`min_delta` must be >= 0"),
    ("monitor", "train_loss", "`monitor` must be one of val_loss, val_quality"),
    ("mode", "up", "`mode` must be one of min, max"),
    ("max_epochs", 0, "`max_epochs` must be a whole number >= 1"),
    ("mode", "min", "`mode` 'min' contradicts `monitor` 'val_quality', which improves towards 'max'"),
    ("epochs_factor", 0.5, r"`epochs_factor` must be in \[1, 100\]"),
])
def test_bad_values_name_the_field(field, value, message):
    extra = {"monitor": "val_quality"} if (field, value) == ("mode", "min") else {}
    with pytest.raises(ConfigError, match=message):
        EarlyStoppingConfig(name="es", **{field: value, **extra})


def test_both_arms_best_epoch_is_read_by_the_one_monitor():
    """The control's best epoch was labelled by validation accuracy while the technique monitored validation loss;
    now both are read by the technique's monitor."""
    from harness.techniques.early_stopping import best_epoch
    from harness.training import TrainingStats

    stats = TrainingStats(val_loss=[0.5, 0.3, 0.4, 0.6], val_quality=[0.7, 0.8, 0.9, 0.85])
    assert best_epoch(stats, "val_loss") == 1
    assert best_epoch(stats, "val_quality") == 2
    assert best_epoch(TrainingStats(val_loss=[float("nan")]), "val_loss") == -1
