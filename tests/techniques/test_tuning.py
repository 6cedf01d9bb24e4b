"""Tuning: three arms from two studies per seed, pruning from the loop's figures, caching, and bad input."""

from __future__ import annotations

import dataclasses

import optuna
import pytest
import torch

import harness.techniques.training as kind
import harness.techniques.tuning as tuning
from harness.cache import Cache
from harness.context import StudyStorage
from harness.errors import ConfigError
from harness.techniques.base import Context
from harness.techniques.tuning import ReportToTrial, TuningConfig, apply_tuning, run_study, variant
from harness.training import TrainingStats
from model_zoo import MODELS
from model_zoo.spec import Split
from tests.techniques.conftest import trainable_reference

SPACE = (("lr", ("log", 1e-3, 0.3)), ("batch_size", ("choice", 8, 16, 32)))


def config(**changes) -> TuningConfig:
    return TuningConfig(**{"name": "tune_toy", "seeds": (0, 1), "n_trials": 4, "space": SPACE, **changes})


def test_apply_trains_tuned_default_and_random_arms_and_keeps_the_history(tmp_path):
    artifact = apply_tuning(trainable_reference(), config(), Context(Cache(tmp_path)))
    arms = artifact.training["arms"]
    assert set(arms) == {"technique", "control", "random"}
    assert all(len(arm["quality"]) == 2 for arm in arms.values())
    search = artifact.details["search"]
    assert [h["trial"] for h in search["history"]] == [0, 1, 2, 3]
    assert {h["state"] for h in search["history"]} <= {"complete", "pruned"}
    assert set(search["best_params"][0]) == {"lr", "batch_size"}
    metrics = artifact.training["metrics"]
    for key in ("training.effect.mean", "training.vs_random.mean", "training.tpe.pruned", "training.random.trials"):
        assert key in metrics
    assert metrics["training.tpe.trials"] == 4


def test_the_tuned_arm_trains_the_studys_best_setting(tmp_path):
    ctx = Context(Cache(tmp_path))
    reference = trainable_reference()
    outcome, studies = tuning.train_tuning_arms(reference, config(seeds=(0,)), ctx)
    best = studies["tpe"][0]["best_params"]
    assert outcome.arms["technique"].stats[0].steps == -(-len(reference.splits.train) // best["batch_size"]) * 6


def test_a_study_result_comes_from_the_cache_the_second_time(tmp_path, monkeypatch):
    ctx, reference, cfg = Context(Cache(tmp_path)), trainable_reference(), config(seeds=(0,))
    first = tuning.cached_study(reference, cfg, "tpe", 0, ctx)
    monkeypatch.setattr(tuning, "run_study", lambda *a, **k: pytest.fail("the study ran again"))
    assert tuning.cached_study(reference, cfg, "tpe", 0, ctx) == first


def test_the_study_never_sees_the_test_split():
    reference = trainable_reference()
    poisoned = Split((torch.full_like(reference.splits.test.inputs[0], float("nan")),),
                     1 - reference.splits.test.targets)
    other = dataclasses.replace(reference, splits=dataclasses.replace(reference.splits, test=poisoned))
    a, b = run_study(reference, config(), "tpe", 0), run_study(other, config(), "tpe", 0)
    assert [h["value"] for h in a["history"]] == [h["value"] for h in b["history"]]


class FakeTrial:
    def __init__(self, prune_after: int) -> None:
        self.reports: list[tuple[float, int]] = []
        self.prune_after = prune_after

    def report(self, value: float, step: int) -> None:
        self.reports.append((value, step))

    def should_prune(self) -> bool:
        return len(self.reports) > self.prune_after


def test_the_pruning_hook_reports_each_epochs_validation_quality_and_stops_when_told():
    trial = FakeTrial(prune_after=2)
    hook, stats = ReportToTrial(trial), TrainingStats()
    decisions = []
    for epoch, q in enumerate([0.5, 0.6, 0.7]):
        stats.val_quality.append(q)
        stats.val_loss.append(1.0)
        decisions.append(hook.end_epoch(epoch, stats, torch.nn.Linear(1, 1)))
    assert trial.reports == [(0.5 - tuning.TIE_BREAK, 0), (0.6 - tuning.TIE_BREAK, 1), (0.7 - tuning.TIE_BREAK, 2)]
    assert decisions == [False, False, True] and hook.pruned


def test_an_always_pruning_study_records_pruned_trials_and_says_there_is_nothing_to_tune_from(monkeypatch):
    monkeypatch.setattr(tuning, "make_pruner", lambda name, epochs: AlwaysPrune())
    with pytest.raises(Exception, match="every trial was pruned"):
        run_study(trainable_reference(), config(n_trials=2), "tpe", 0)


class AlwaysPrune(tuning.optuna.pruners.BasePruner):
    def prune(self, study, trial) -> bool:
        return True


def test_ties_in_validation_quality_go_to_the_lower_validation_loss():
    a, b = TrainingStats(val_quality=[0.9], val_loss=[0.3]), TrainingStats(val_quality=[0.9], val_loss=[0.5])
    worse_quality = TrainingStats(val_quality=[0.89], val_loss=[0.01])
    assert tuning.score(a) > tuning.score(b) > tuning.score(worse_quality)


def test_width_builds_the_zoos_variant():
    spec = MODELS.get("cancer_mlp")
    build, recipe = variant(spec, {"width": 0.5, "lr": 0.01})
    assert build().net[0].out_features == 32 and recipe.lr == 0.01
    no_variant = dataclasses.replace(spec, build_variant=None)
    with pytest.raises(ConfigError, match="build_variant"):
        variant(no_variant, {"width": 2.0})


@pytest.mark.parametrize(("changes", "field"), [
    ({"n_trials": 0}, "n_trials"),
    ({"pruner": "hyperband"}, "pruner"),
    ({"space": (("lr", ("log", 0.0, 1.0)),)}, "space.lr"),
    ({"space": (("lr", ("nope", 1, 2)),)}, "space.lr"),
])
def test_bad_settings_name_the_field(changes, field):
    with pytest.raises(ConfigError, match=f"`{field}"):
        config(**changes)


def test_an_empty_search_space_is_refused_naming_the_model():
    spec = dataclasses.replace(MODELS.get("cancer_mlp"), search_space={})
    with pytest.raises(ConfigError, match="empty search space"):
        TuningConfig(name="t").search_space(spec)


def test_params_outside_the_models_space_are_refused():
    with pytest.raises(ConfigError, match="`params` names depth"):
        TuningConfig(name="t", params=("depth",)).search_space(MODELS.get("cancer_mlp"))


def test_a_model_without_a_declared_space_is_tuned_around_its_recipe():
    import dataclasses

    from harness.techniques.tuning import default_space
    from model_zoo.traits import traits_of

    resnet = MODELS.get("digits_resnet")
    assert resnet.search_space is None and TuningConfig(name="t").not_applicable(resnet, traits_of(resnet)) is None
    space = TuningConfig(name="t").search_space(resnet)
    assert space == default_space(resnet.recipe)
    assert space["lr"] == ("log", resnet.recipe.lr / 10, resnet.recipe.lr * 10)
    assert space["batch_size"] == ("choice", 32, 64, 128)
    pretrained = dataclasses.replace(resnet, name="frozen", recipe=None)
    assert TuningConfig(name="t").not_applicable(pretrained, traits_of(pretrained)) == (
        "needs a training recipe and a search space or a training recipe to search around")


def test_tuning_declares_its_arms_as_every_training_technique_does(tmp_path):
    ctx, reference, cfg = Context(Cache(tmp_path)), trainable_reference(), config()
    arms = cfg.arms(reference, ctx)
    assert list(arms) == ["technique", "random", "control"]
    studies = tuning.run_studies(reference, cfg, ctx)
    for sampler, arm in (("tpe", "technique"), ("random", "random")):
        for seed, study in zip(cfg.seeds, studies[sampler], strict=True):
            assert arms[arm].at(seed).recipe == variant(reference.spec, study["best_params"])[1]
    assert all(arms["control"].at(seed).recipe == reference.spec.recipe for seed in cfg.seeds)


def test_tuning_trains_through_the_shared_path_once_per_run(tmp_path, monkeypatch):
    reference, cfg = trainable_reference(), config(seeds=(0,))
    calls: list[object] = []
    real = kind.train_arms
    monkeypatch.setattr(kind, "train_arms", lambda *args: calls.append(args) or real(*args))
    ctx = Context(Cache(tmp_path))
    first = apply_tuning(reference, cfg, ctx)
    assert apply_tuning(reference, cfg, ctx).key == first.key
    assert len(calls) == 1  # the run's memo store holds the outcome
    again = apply_tuning(reference, cfg, Context(Cache(tmp_path)))  # another run: from the disk cache
    assert len(calls) == 2 and again.key == first.key and again.training == first.training


def test_studies_run_in_the_storage_the_context_names(tmp_path):
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    ctx = Context(Cache(tmp_path / "cache"), optuna=StudyStorage(url, "mine"))
    reference = trainable_reference()
    result = tuning.cached_study(reference, config(seeds=(0,)), "tpe", 0, ctx)
    assert result["study"] == f"mine-{reference.spec.name}-tune_toy-tpe-seed0"
    assert len(optuna.load_study(study_name=result["study"], storage=url).trials) == 4
    assert not (tmp_path / "cache" / tuning.STUDY_NAMESPACE).exists()  # kept in the storage, not the cache


def test_cold_studies_run_in_forked_processes_with_the_same_results(tmp_path, monkeypatch):
    """The studies are independent and train on one thread, so a cold run spreads them over processes: the
    results are the ones one process finds (all but the wall time), and this process ran only its share."""
    reference, cfg = trainable_reference(), config()
    monkeypatch.setenv("OPTBENCH_TRAIN_PROCESSES", "1")
    alone = tuning.run_studies(reference, cfg, Context(Cache(tmp_path / "one")))
    ran: list[tuple[str, int]] = []
    real = tuning.run_study

    def counted(ref, c, sampler, seed, **k):
        ran.append((sampler, seed))
        return real(ref, c, sampler, seed, **k)

    monkeypatch.setattr(tuning, "run_study", counted)
    monkeypatch.setenv("OPTBENCH_TRAIN_PROCESSES", "2")
    spread = tuning.run_studies(reference, cfg, Context(Cache(tmp_path / "two")))
    assert ran == [("tpe", 0), ("random", 0)]  # of the 4 (sampler, seed) studies: jobs[0::2]

    def without_time(studies):
        return {s: [{k: v for k, v in r.items() if k != "wall_s"} for r in rs] for s, rs in studies.items()}

    assert without_time(spread) == without_time(alone)
