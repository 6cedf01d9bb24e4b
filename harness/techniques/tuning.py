"""Hyperparameter tuning with Optuna: a TPE study over a model's declared search space, pruned from the training
loop's per-epoch validation figures, against the zoo's default recipe and a random search at the same budget.

Each seed runs a whole study (sampler and training seeded alike) on the validation split only; its best setting
is then trained and judged on the test split, paired over seeds with the default recipe and with the best setting
of a random-sampler study. Study results are cached by a key that includes this code (or kept in the Optuna
storage the run names, where several workers may share them).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import optuna
import torch
from torch import nn

from harness import forked
from harness import training as training_loop
from harness.artifact import Artifact
from harness.cache import make_key, source_hash
from harness.config import require_choice, require_int
from harness.context import StudyStorage
from harness.core import Expectation
from harness.errors import CacheError, ConfigError, TechniqueError
from harness.search import storage as search_storage
from harness.search.space import Space, signature, suggest, validate_space
from harness.techniques.base import Context, register_preset, register_technique
from harness.techniques.training import (
    CONTROL_ARM,
    TECHNIQUE_ARM,
    Arm,
    TrainingConfig,
    TrainingOutcome,
    apply_training,
    per_seed,
    train_arms,
)
from harness.training import Hook, TrainingStats, fit
from model_zoo.datasets import splits_fingerprint
from model_zoo.reference import Reference
from model_zoo.spec import ModelSpec, TrainRecipe

RANDOM_ARM = "random"
SAMPLERS = ("tpe", "random")
PRUNERS = ("median", "successive_halving", "none")
RECIPE_PARAMS = ("lr", "weight_decay", "batch_size")
# Non-inferiority margin of the tuned setting against the default recipe and against random search: a study on a
# validation split of a hundred items may pick a setting no better than the default; it must not pick a worse one.
TUNED_MARGIN = 0.01


def default_space(recipe: TrainRecipe) -> Space:
    """The space a model without a declared one is tuned over: its learning rate a decade either way, weight decay
    from none to strong, and half, the same or twice its batch size."""
    sizes = sorted({max(1, recipe.batch_size // 2), recipe.batch_size, recipe.batch_size * 2})
    return {"lr": ("log", recipe.lr / 10, recipe.lr * 10), "weight_decay": ("log", 1e-6, 1e-1),
            "batch_size": ("choice", *sizes)}
STUDY_NAMESPACE = "studies"
STUDIES_MEMO = "tuning studies"  # the run's memo store (ctx.memos) of each config's studies
# Validation accuracy on a hundred items ties often; the validation cross-entropy, scaled so that it never
# outweighs one item (loss < 8), breaks the ties towards the better-calibrated setting.
TIE_BREAK = 1e-3
optuna.logging.set_verbosity(optuna.logging.WARNING)  # one line per trial is noise in a benchmark run


class ReportToTrial(Hook):
    """Report each epoch's validation quality to the Optuna trial and stop training once the pruner says so."""

    name = "optuna_pruning"

    def __init__(self, trial: optuna.Trial) -> None:
        self.trial = trial
        self.pruned = False

    def end_epoch(self, epoch: int, stats: TrainingStats, model: nn.Module) -> bool:
        self.trial.report(score(stats), epoch)
        self.pruned = self.trial.should_prune()
        return self.pruned


def score(stats: TrainingStats) -> float:
    """What a trial maximizes: the last epoch's validation quality, ties broken by validation loss (0 if NaN)."""
    quality = stats.val_quality[-1] if stats.val_quality else math.nan
    loss = stats.val_loss[-1] if stats.val_loss else math.nan
    if not math.isfinite(quality):
        return 0.0
    return quality - TIE_BREAK * min(loss, 8.0) if math.isfinite(loss) else quality


def make_sampler(name: str, seed: int) -> optuna.samplers.BaseSampler:
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=3)
    return optuna.samplers.RandomSampler(seed=seed)


def make_pruner(name: str, epochs: int) -> optuna.pruners.BasePruner:
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=max(1, epochs // 3))
    if name == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=max(1, epochs // 4), reduction_factor=3)
    return optuna.pruners.NopPruner()


def variant(spec: ModelSpec, params: dict[str, Any]) -> tuple[Callable[[], nn.Module], TrainRecipe]:
    """The model builder and recipe a point of the search space stands for (unsearched fields: the zoo's)."""
    assert spec.recipe is not None
    recipe = dataclasses.replace(spec.recipe, **{k: params[k] for k in RECIPE_PARAMS if k in params})
    if "width" in params:
        if spec.build_variant is None:
            raise ConfigError(f"{spec.name} declares `width` in its search space but no `build_variant`")
        return functools.partial(spec.build_variant, width=params["width"]), recipe
    return spec.build, recipe


@dataclasses.dataclass(frozen=True)
class TuningConfig(TrainingConfig):
    """Tune ``params`` (dimensions of the model's declared ``search_space``; empty: all of them) with ``n_trials``
    trials of a TPE study per seed, pruned by ``pruner``; controls: the default recipe and a random study.

    ``space`` overrides the model's declaration (the same format, :mod:`harness.search.space`), as pairs.
    Contract: the tuned setting's test quality >= the default's and >= the random search's, mean over seeds.
    """

    n_trials: int = 8
    pruner: str = "median"
    params: tuple[str, ...] = ()
    space: tuple[tuple[str, tuple[Any, ...]], ...] = ()
    technique: ClassVar[str] = "tuning"

    def validate(self) -> None:
        super().validate()
        require_int("n_trials", self.n_trials, 1)
        require_choice("pruner", self.pruner, PRUNERS)
        if self.space:
            validate_space(dict(self.space), "space")

    requires: ClassVar[tuple[str, ...]] = ("trainable", "labels", "search_space")

    def search_space(self, spec: ModelSpec) -> Space:
        """The space searched for ``spec``: the config's own, else the model's, else a default one around its
        recipe (:func:`default_space`), cut to ``params``."""
        if self.space:
            space = dict(self.space)
        elif spec.search_space is not None:
            space = dict(spec.search_space)
        else:
            assert spec.recipe is not None
            space = default_space(spec.recipe)
        if self.params:
            unknown = [p for p in self.params if p not in space]
            if unknown:
                raise ConfigError(f"`params` names {', '.join(unknown)}, not in {spec.name}'s search space "
                                  f"({', '.join(space) or 'empty'})")
            space = {p: space[p] for p in self.params}
        validate_space(space, f"{spec.name}.search_space")
        return space

    # The artifact's key as it was before tuning shared apply_training: "tuned", with the study storage's URL.
    artifact_prefix: ClassVar[str] = "tuned"

    def memo_parts(self, ctx: Context) -> tuple[object, ...]:
        return (ctx.optuna.url,)

    def arms(self, reference: Reference, ctx: Context) -> dict[str, Arm]:
        """Per seed, the TPE study's best setting (technique), the random study's best (random) and the default
        recipe (control): each seed trains its own study's choice."""
        studies = run_studies(reference, self, ctx)
        return {TECHNIQUE_ARM: per_seed({seed: _arm(reference, r["best_params"])
                                         for seed, r in zip(self.seeds, studies["tpe"], strict=True)}),
                RANDOM_ARM: per_seed({seed: _arm(reference, r["best_params"])
                                      for seed, r in zip(self.seeds, studies["random"], strict=True)}),
                CONTROL_ARM: _arm(reference, {})}

    def summarize(self, outcome: TrainingOutcome, reference: Reference, ctx: Context) -> dict[str, float]:
        """The studies' figures (:func:`summarize`) and the share of seeds whose study left the default recipe."""
        studies = run_studies(reference, self, ctx)
        out = summarize(studies)
        assert reference.spec.recipe is not None
        default = {k: getattr(reference.spec.recipe, k) for k in RECIPE_PARAMS}
        moved = [any(k in r["best_params"] and r["best_params"][k] != v for k, v in default.items())
                 or r["best_params"].get("width", 1.0) != 1.0 for r in studies["tpe"]]
        out["tuned_moved"] = sum(moved) / len(moved)  # seeds whose study left the default recipe
        return out

    def details(self, reference: Reference, ctx: Context) -> dict[str, Any]:
        """Every study's result, the first TPE study's history and each seed's best setting, for the report."""
        studies = run_studies(reference, self, ctx)
        return {"search": {"studies": {s: [dict(r) for r in rs] for s, rs in studies.items()},
                           "history": studies["tpe"][0]["history"],
                           "best_params": [r["best_params"] for r in studies["tpe"]]}}

    def expectations(self) -> list[Expectation]:
        return [
            Expectation("search_ran", "training.tpe.trials", ">=", float(self.n_trials)),
            Expectation("search_moved", "training.tuned_moved", ">", 0.0),
            Expectation("tuned_vs_default", "training.effect.mean", ">=", -TUNED_MARGIN, decision="interval",
                        unit="seeds"),
            Expectation("tuned_vs_random", "training.vs_random.mean", ">=", -TUNED_MARGIN, decision="interval",
                        unit="seeds"),
        ]


def study_key(reference: Reference, config: TuningConfig, space: Space, sampler: str, seed: int) -> str:
    spec = reference.spec
    settings = {"n_trials": config.n_trials, "pruner": config.pruner, "space": signature(space)}
    build = spec.build_variant or spec.build
    return make_key("study", settings, sampler, seed, spec.name, spec.recipe.to_dict() if spec.recipe else None,
                    splits_fingerprint(reference.splits), source_hash(sys.modules[__name__]),
                    source_hash(training_loop), source_hash(build), torch.__version__)


def run_study(reference: Reference, config: TuningConfig, sampler: str, seed: int, *,
              url: str | None = None, study_name: str | None = None,
              callbacks: tuple[Callable[[optuna.Study, optuna.trial.FrozenTrial], None], ...] = ()) -> dict[str, Any]:
    """Run one study (``n_trials`` finished trials in all, counting those already in a shared storage) and return
    its JSON-able result: best value and params, trials run and pruned, wall time and the history."""
    spec = reference.spec
    search_space = config.search_space(spec)
    name = study_name or f"{spec.name}-{config.name}-{sampler}-seed{seed}"
    study = search_storage.open_study(
        name, url, signature(search_space), sampler=make_sampler(sampler, seed),
        pruner=make_pruner(config.pruner, spec.recipe.epochs if spec.recipe else 1),
    )

    def objective(trial: optuna.Trial) -> float:
        params = suggest(trial, search_space)
        build, recipe = variant(spec, params)
        hook = ReportToTrial(trial)
        _, stats = fit(build, dataclasses.replace(recipe, seed=seed), reference.splits, [hook],
                       label=f"{name}/trial {trial.number}")
        trial.set_user_attr("epochs_run", stats.epochs_run)
        if hook.pruned:
            raise optuna.TrialPruned()
        return score(stats)

    started = time.perf_counter()
    finished = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    remaining = config.n_trials - len(study.get_trials(deepcopy=False, states=finished))
    if remaining > 0:
        # Workers sharing a study stop once it holds ``n_trials`` finished trials, whoever ran them.
        stop = optuna.study.MaxTrialsCallback(config.n_trials, states=finished)
        study.optimize(objective, n_trials=remaining, callbacks=[stop, *callbacks], catch=())
    return study_result(study, time.perf_counter() - started)


def study_result(study: optuna.Study, wall_s: float) -> dict[str, Any]:
    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not complete:
        raise TechniqueError(f"study {study.study_name!r}: every trial was pruned or failed; nothing to tune from")
    best = study.best_trial
    return {
        "study": study.study_name,
        "best_value": float(best.value),
        "best_params": dict(best.params),
        "best_trial": best.number,
        "n_trials": len(trials),
        "n_pruned": sum(t.state == optuna.trial.TrialState.PRUNED for t in trials),
        "epochs_run": sum(int(t.user_attrs.get("epochs_run", 0)) for t in trials),
        "wall_s": wall_s,
        "history": [{"trial": t.number, "value": t.value if t.value is None else float(t.value),
                     "state": t.state.name.lower(), "params": dict(t.params)} for t in trials],
    }


def study_path(reference: Reference, config: TuningConfig, sampler: str, seed: int, ctx: Context) -> Path:
    """Where a study's result is cached (without a study storage)."""
    space = config.search_space(reference.spec)
    return ctx.cache.path(STUDY_NAMESPACE, study_key(reference, config, space, sampler, seed), ".json")


def cached_study(reference: Reference, config: TuningConfig, sampler: str, seed: int, ctx: Context,
                 ) -> dict[str, Any]:
    """A study's result from the cache, run now if missing — or, with a study storage in ``ctx.optuna``, run in
    that storage."""
    storage: StudyStorage = ctx.optuna
    if storage.url is not None:
        name = f"{storage.study_prefix}-{reference.spec.name}-{config.name}-{sampler}-seed{seed}"
        return run_study(reference, config, sampler, seed, url=storage.url, study_name=name)
    path = study_path(reference, config, sampler, seed, ctx)
    loaded: list[dict[str, Any]] = []

    def create(tmp: Path) -> None:
        tmp.write_text(json.dumps(run_study(reference, config, sampler, seed)))

    def validate(candidate: Path) -> None:
        data = json.loads(candidate.read_text())
        if not isinstance(data, dict) or not isinstance(data.get("best_params"), dict):
            raise CacheError(f"{candidate} does not hold a study result")
        loaded[:] = [data]

    ctx.cache.get_or_create(path, create, validate)
    return loaded[-1]


def _arm(reference: Reference, params: dict[str, Any]) -> Arm:
    build, recipe = variant(reference.spec, params)
    return Arm(build, recipe, reference.splits, key={"width": params.get("width")})


def run_studies(reference: Reference, config: TuningConfig, ctx: Context) -> dict[str, list[dict[str, Any]]]:
    """Both samplers' studies, one per seed: run (or loaded) once per run, kept in ``ctx.memos``."""
    memo = ctx.memos.store(STUDIES_MEMO)
    key = make_key(config.to_dict(), reference.key, str(ctx.cache.root), ctx.optuna.url)
    if key not in memo:
        jobs = [(sampler, seed) for sampler in SAMPLERS for seed in config.seeds]
        if ctx.optuna.url is None and any(not study_path(reference, config, s, seed, ctx).exists() for s, seed in jobs):
            # Cold: the studies are independent and train on one thread each, so they are spread over forked
            # processes (harness.forked) that cache their results; the line below loads them.
            forked.spread(jobs, lambda job: cached_study(reference, config, job[0], job[1], ctx),
                          child_setup=lambda: torch.set_num_threads(1))
        memo[key] = {s: [cached_study(reference, config, s, seed, ctx) for seed in config.seeds] for s in SAMPLERS}
    studies: dict[str, list[dict[str, Any]]] = memo[key]
    return studies


def train_tuning_arms(reference: Reference, config: TuningConfig, ctx: Context,
                      ) -> tuple[TrainingOutcome, dict[str, list[dict[str, Any]]]]:
    """Run (or load) both studies per seed, then train and test each seed's tuned, random-best and default arm
    (:func:`~harness.techniques.training.train_arms`, as every training technique)."""
    return train_arms(reference, config, ctx), run_studies(reference, config, ctx)


def summarize(studies: dict[str, list[dict[str, Any]]]) -> dict[str, float]:
    """Per sampler: mean best validation value, trials run and pruned, and study wall time (a cached study keeps
    the time it took when it ran)."""
    out: dict[str, float] = {}
    for sampler, results in studies.items():
        n = len(results)
        out[f"{sampler}.best_val"] = sum(r["best_value"] for r in results) / n
        out[f"{sampler}.trials"] = sum(r["n_trials"] for r in results) / n
        out[f"{sampler}.pruned"] = sum(r["n_pruned"] for r in results) / n
        out[f"{sampler}.wall_s"] = sum(r["wall_s"] for r in results) / n
    return out


@register_technique(TuningConfig)
def apply_tuning(reference: Reference, config: TuningConfig, ctx: Context) -> Artifact:
    """The tuned arm's first-seed model, with every arm's figures and the studies' histories for the report: the
    shared :func:`~harness.techniques.training.apply_training`."""
    return apply_training(reference, config, ctx)


SUITE = "tuning"
register_preset(SUITE, TuningConfig(name="tuning_tpe", n_trials=8))
