"""The training-technique kind: arms over seeds, cached by a key that includes the technique's code."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import pytest
import torch

import harness.techniques.training as kind
from harness.cache import Cache
from harness.case import generate_cases
from harness.errors import ConfigError
from harness.techniques.base import Context, register_preset
from harness.techniques.training import CONTROL_ARM, TECHNIQUE_ARM, Arm, TrainingConfig, apply_training, train_arms
from harness.training import Hook
from tests.techniques.conftest import trainable_reference


class Scale(Hook):
    """Scales gradients: a real, seed-independent change to training under SGD (AdamW divides a constant factor
    out of its update, so the arms below train with SGD)."""

    name = "scale"

    def __init__(self, factor: float) -> None:
        self.factor = factor

    def after_backward(self, model):
        for p in model.parameters():
            p.grad.mul_(self.factor)


@dataclasses.dataclass(frozen=True)
class ScaleConfig(TrainingConfig):
    factor: float = 0.5
    technique: ClassVar[str] = "toy_training"

    def arms(self, reference, ctx):
        spec = reference.spec
        recipe = dataclasses.replace(spec.recipe, optimizer="sgd")
        return {
            TECHNIQUE_ARM: Arm(spec.build, recipe, reference.splits, hooks=lambda seed: [Scale(self.factor)]),
            CONTROL_ARM: Arm(spec.build, recipe, reference.splits),
        }

    def summary(self, outcome):
        return {"steps": float(sum(s.steps for s in outcome.arms[TECHNIQUE_ARM].stats))}


def test_every_arm_is_trained_on_every_seed_and_compared(ctx):
    outcome = train_arms(trainable_reference(), ScaleConfig(name="half", seeds=(0, 1, 2)), ctx)
    assert set(outcome.arms) == {TECHNIQUE_ARM, CONTROL_ARM}
    assert all(len(a.quality) == 3 and len(a.stats) == 3 for a in outcome.arms.values())
    metrics = outcome.metrics()
    diff = outcome.comparison(CONTROL_ARM)
    assert metrics["training.effect.mean"] == pytest.approx(diff.mean)
    assert metrics["training.steps"] == 3 * outcome.arms[TECHNIQUE_ARM].stats[0].steps
    data = outcome.to_dict()
    assert data["comparisons"][0]["against"] == CONTROL_ARM and len(data["arms"]["technique"]["stats"]) == 3
    for hooked, plain in zip(outcome.modules[TECHNIQUE_ARM], outcome.modules[CONTROL_ARM], strict=True):
        # the hook changed training: same seed, same data, other weights (by more than rounding)
        with torch.no_grad():
            gap = max(float((a - b).abs().max()) for a, b in zip(hooked.parameters(), plain.parameters(), strict=True))
        assert gap > 1e-3, gap


def count_fits(monkeypatch: pytest.MonkeyPatch) -> list[str | None]:
    """From now on, the label of every fit in this process, in order."""
    calls: list[str | None] = []
    real_fit = kind.fit

    def counting_fit(*args, **kwargs):
        calls.append(kwargs.get("label"))
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(kind, "fit", counting_fit)
    return calls


def test_a_warm_run_trains_nothing_and_a_changed_config_trains_again(ctx, monkeypatch):
    monkeypatch.setenv("OPTBENCH_TRAIN_PROCESSES", "1")  # fits are counted in this process
    ref = trainable_reference()
    first = train_arms(ref, ScaleConfig(name="half"), ctx)
    calls = count_fits(monkeypatch)
    again = train_arms(ref, ScaleConfig(name="renamed_but_same"), ctx)
    assert calls == [] and again.arms[TECHNIQUE_ARM].quality == first.arms[TECHNIQUE_ARM].quality
    train_arms(ref, ScaleConfig(name="half", factor=0.25), ctx)
    assert len(calls) == 3  # the technique arm's seeds only: the control trains without the changed hook


def test_cold_arms_train_in_forked_processes_with_the_same_weights(tmp_path, monkeypatch):
    """Arms train on one thread each, so a cold config spreads its (arm, seed) jobs over forked processes; what
    they cache is what one process trains, bit for bit."""
    ref = trainable_reference()
    config = ScaleConfig(name="half", seeds=(0, 1, 2))
    monkeypatch.setenv("OPTBENCH_TRAIN_PROCESSES", "1")
    alone = train_arms(ref, config, Context(Cache(tmp_path / "one"), 1))
    calls = count_fits(monkeypatch)
    monkeypatch.setenv("OPTBENCH_TRAIN_PROCESSES", "2")
    spread = train_arms(ref, config, Context(Cache(tmp_path / "two"), 1))
    assert len(calls) == 3  # of 6 (arm, seed) jobs: the other 3 trained in the forked process
    for name in (TECHNIQUE_ARM, CONTROL_ARM):
        assert spread.arms[name].quality == alone.arms[name].quality
        for a, b in zip(spread.modules[name], alone.modules[name], strict=True):
            assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(),
                                                         strict=True))
        assert [s.val_loss for s in spread.arms[name].stats] == [s.val_loss for s in alone.arms[name].stats]


def test_the_artifact_is_the_first_seed_of_the_technique_with_its_own_digest(ctx):
    ref = trainable_reference()
    artifact = apply_training(ref, ScaleConfig(name="half"), ctx)
    assert artifact.training is not None and artifact.weights
    assert artifact.weights != ref.weights_digest
    x = ref.splits.test.inputs[0]
    assert torch.isfinite(artifact.module(x)).all()


def test_arms_without_a_control_are_refused(ctx):
    @dataclasses.dataclass(frozen=True)
    class NoControl(ScaleConfig):
        def arms(self, reference, ctx):
            return {TECHNIQUE_ARM: super().arms(reference, ctx)[TECHNIQUE_ARM]}

    with pytest.raises(ConfigError, match="must return control as well"):
        train_arms(trainable_reference(), NoControl(name="nc"), ctx)


@pytest.mark.parametrize(("seeds", "message"), [((), "`seeds` must hold at least one seed"),
                                                ((1, 1), "`seeds` must be distinct"),
                                                ((-1,), "`seeds` must be distinct whole numbers >= 0")])
def test_bad_seed_lists_name_the_field(seeds, message):
    with pytest.raises(ConfigError, match=message):
        ScaleConfig(name="x", seeds=seeds)


def test_training_cases_run_on_torch_eager_only_and_need_a_recipe():
    from harness.techniques import base as tbase

    register_preset("toy_training_suite", ScaleConfig(name="half"))
    try:
        cases = generate_cases("toy_training_suite", models=("cancer_mlp", "minilm"))
    finally:
        tbase.PRESETS.pop("toy_training_suite")
    assert {(c.model, c.backend) for c in cases} == {("cancer_mlp", "torch_eager")}
    assert [c.config.name for c in cases] == ["fp32", "half"]
