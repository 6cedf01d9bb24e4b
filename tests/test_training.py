"""The harness's one training loop: determinism, the order and effect of hooks, and the figures it records."""

from __future__ import annotations

import math

import pytest
from torch import nn

from harness.artifact import weights_digest
from harness.errors import ConfigError, HookError, ModelError
from harness.training import Hook, TrainingStats, bucket_max, fit
from model_zoo.spec import Split, Splits, TrainRecipe
from tests.toy_models import MLP, labelled_splits

RECIPE = TrainRecipe(epochs=4, lr=0.05, batch_size=16, seed=0)


def toy_splits() -> Splits:
    return labelled_splits(96, 32, 32)


def build() -> nn.Module:
    return MLP(4, 16, 2)


class Recorder(Hook):
    name = "recorder"

    def __init__(self) -> None:
        self.calls: list[str] = []

    def setup(self, model, optimizer):
        self.calls.append("setup")
        return model, optimizer

    def batch(self, inputs, targets):
        self.calls.append("batch")
        return inputs, targets

    def loss(self, outputs, targets, inputs, loss):
        self.calls.append("loss")
        return loss

    def after_backward(self, model):
        self.calls.append("after_backward")

    def end_epoch(self, epoch, stats, model):
        self.calls.append("end_epoch")
        return False

    def finish(self, model):
        self.calls.append("finish")
        return model


def test_same_seed_gives_the_same_weights_and_another_seed_other_weights():
    splits = toy_splits()
    a, _ = fit(build, RECIPE, splits)
    b, _ = fit(build, RECIPE, splits)
    c, _ = fit(build, TrainRecipe(epochs=4, lr=0.05, batch_size=16, seed=1), splits)
    assert weights_digest(a) == weights_digest(b) != weights_digest(c)


def test_hooks_are_called_in_step_order_and_figures_are_recorded():
    rec = Recorder()
    splits = toy_splits()
    model, stats = fit(build, RECIPE, splits, [rec])
    steps_per_epoch = math.ceil(96 / 16)
    assert rec.calls[0] == "setup" and rec.calls[-1] == "finish"
    assert rec.calls[1:5] == ["batch", "loss", "after_backward", "batch"]
    assert rec.calls.count("end_epoch") == RECIPE.epochs
    assert stats.steps == steps_per_epoch * RECIPE.epochs == len(stats.grad_norm)
    assert stats.samples_seen == 96 * RECIPE.epochs
    assert stats.epochs_run == stats.max_epochs == RECIPE.epochs and stats.stop_reason == "max_epochs"
    assert len(stats.train_loss) == len(stats.val_loss) == len(stats.val_quality) == RECIPE.epochs
    assert stats.best_epoch == max(range(RECIPE.epochs), key=lambda e: stats.val_quality[e])
    assert not model.training


class StopAt(Hook):
    name = "stop_at"

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def end_epoch(self, epoch, stats, model):
        return epoch == self.epoch


def test_an_end_of_epoch_hook_stops_training():
    _, stats = fit(build, RECIPE, toy_splits(), [StopAt(1)])
    assert stats.epochs_run == 2 and stats.stop_reason == "hook:stop_at"


class ZeroGrads(Hook):
    name = "zero_grads"

    def after_backward(self, model):
        for p in model.parameters():
            p.grad.zero_()


def test_the_gradient_norm_is_recorded_before_hooks_change_the_gradients():
    model = build()
    before = weights_digest(model)
    trained, stats = fit(model, RECIPE, toy_splits(), [ZeroGrads()])
    assert all(n > 0 for n in stats.grad_norm)
    # AdamW with zero gradients only decays weights (weight_decay 0 here): nothing moves
    assert weights_digest(trained) == before


class Explodes(Hook):
    name = "explodes"

    def end_epoch(self, epoch, stats, model):
        raise ValueError("boom\nmore detail")


def test_a_hook_that_raises_is_named_with_its_method_and_run():
    with pytest.raises(HookError, match=r"^toy run: hook 'explodes' raised in end_epoch: ValueError: boom$"):
        fit(build, RECIPE, toy_splits(), [Explodes()], label="toy run")


def test_a_model_that_does_not_fit_its_data_is_one_line_naming_the_phase():
    with pytest.raises(ModelError, match=r"^model 'misfit': training failed: RuntimeError: mat1 and mat2 shapes"):
        fit(lambda: MLP(5, 8, 2), RECIPE, toy_splits(), label="model 'misfit'")


def test_a_model_whose_build_raises_is_one_line_naming_the_phase():
    def broken() -> nn.Module:
        raise TypeError("bad width")

    with pytest.raises(ModelError, match=r"^model 'broken': build failed: TypeError: bad width$"):
        fit(broken, RECIPE, toy_splits(), label="model 'broken'")


class NaNLoss(Hook):
    name = "nan_loss"

    def loss(self, outputs, targets, inputs, loss):
        return loss * float("nan")


def test_a_non_finite_loss_stops_training_as_diverged():
    _, stats = fit(build, RECIPE, toy_splits(), [NaNLoss()])
    assert stats.diverged and stats.stop_reason == "diverged" and stats.epochs_run == 1 and stats.steps == 0


def test_split_without_class_targets_needs_a_hook_loss():
    splits = toy_splits()
    unlabelled = Splits(Split(splits.train.inputs), Split(splits.val.inputs), Split(splits.test.inputs))
    with pytest.raises(ConfigError, match="no class targets and no hook gave a loss"):
        fit(build, RECIPE, unlabelled)


def test_bucket_max_keeps_spikes_and_bounds_length():
    values = [1.0] * 1000
    values[777] = 50.0
    short = bucket_max(values, points=100)
    assert len(short) == 100 and max(short) == 50.0
    assert bucket_max([1.0, 2.0], points=100) == [1.0, 2.0]


def test_training_stats_round_trip_through_json_with_non_finite_values():
    stats = TrainingStats(label="x", first_loss=math.nan, train_loss=[1.0, math.inf], val_loss=[0.5, math.nan])
    data = stats.to_dict()
    assert data["first_loss"] is None and data["train_loss"] == [1.0, None]
    back = TrainingStats.from_dict(data)
    assert math.isnan(back.first_loss) and math.isnan(back.train_loss[1]) and back.label == "x"


@pytest.mark.parametrize(("field", "value", "message"), [
    ("optimizer", "lion", "`optimizer` must be one of adamw, sgd"),
    ("epochs", 0, "`epochs` must be a whole number >= 1, got 0"),
    ("lr", 0.0, "`lr` must be > 0"),
    ("batch_size", 0, "`batch_size` must be a whole number >= 1, got 0"),
    ("batch_size", 16.0, "`batch_size` must be a whole number >= 1, got 16.0"),
    ("epochs", True, "`epochs` must be a whole number >= 1, got True"),
])
def test_a_recipe_names_its_bad_field(field, value, message):
    kwargs = {"epochs": 2, "lr": 0.1, "batch_size": 4, field: value}
    with pytest.raises(ConfigError, match=message):
        TrainRecipe(**kwargs)


def test_sgd_recipe_trains_and_keeps_old_keys_for_adamw():
    assert "optimizer" not in RECIPE.to_dict()
    sgd = TrainRecipe(epochs=2, lr=0.05, batch_size=16, optimizer="sgd")
    assert sgd.to_dict()["optimizer"] == "sgd"
    _, stats = fit(build, sgd, toy_splits())
    assert stats.steps > 0 and all(math.isfinite(x) for x in stats.train_loss)


def test_an_empty_training_split_is_one_line_saying_what_was_expected():
    import dataclasses

    splits = labelled_splits(8, 4, 4)
    train = Split(tuple(t[:0] for t in splits.train.inputs), splits.train.targets[:0])
    with pytest.raises(ConfigError, match=r"^my_model: the training split is empty; expected at least one training "
                                          r"item$"):
        fit(lambda: MLP(4, 8, 2), RECIPE, dataclasses.replace(splits, train=train), label="my_model")
