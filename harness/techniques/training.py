"""The training-technique kind: a technique that changes how a model is trained, measured against a control.

A training technique declares *arms* — the technique itself, its control (the same model, data, recipe and seeds
without the change) and any further comparison (k random real images, the full data set, a default recipe). Each
arm is trained on every seed of the config through :func:`harness.training.fit`, cached by a key that includes the
technique's code, and scored on the real test split. The effect is the paired difference over seeds with its
interval (:mod:`harness.metrics.seeds`). The case's artifact is the technique arm's model of the first seed, so it
is measured like any other model, and a post-training technique can be chained after it.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from harness import forked
from harness import training as training_loop
from harness.artifact import Artifact, ArtifactKind, Precision, weights_digest
from harness.cache import make_key, source_hash
from harness.core import Expectation
from harness.errors import CacheError, ConfigError, TechniqueError
from harness.metrics.seeds import PairedDifference, Spread
from harness.techniques.base import Context, TechniqueConfig
from harness.training import Hook, TrainingStats, fit, predict, reproducible
from model_zoo.datasets import splits_fingerprint
from model_zoo.reference import Reference
from model_zoo.spec import Split, Splits, TrainRecipe

TRAINED_NAMESPACE = "trained"
TRAINED_MEMO = "training outcomes"  # the run's memo store (ctx.memos) of every trained config's outcome
TECHNIQUE_ARM, CONTROL_ARM = "technique", "control"
EAGER_BACKENDS = frozenset({"torch_eager"})

ArmScores = Callable[[nn.Module, Split], np.ndarray]  # one score per test item; quality is their mean


def _no_hooks(seed: int) -> Sequence[Hook]:
    return ()


@dataclasses.dataclass(frozen=True)
class Arm:
    """One way of training a model: what to build, how to train it, on which data, with which hooks.

    ``recipe`` None means the model is used as built, untrained (e.g. a model cut down without distillation).
    ``key`` holds JSON-able parts that change the result but that the cache cannot see (a teacher's digest).
    ``resample`` gives the data of one seed where the arm draws something random per seed (a random subset):
    a control samples what varies, so the effect's interval covers that draw too.
    ``per_seed`` gives the whole arm of one seed where it trains another model or recipe per seed (a study's best
    setting): :meth:`at` resolves it, and each seed's arm is keyed as itself (:func:`per_seed`).
    """

    build: Callable[[], nn.Module]
    recipe: TrainRecipe | None
    splits: Splits
    hooks: Callable[[int], Sequence[Hook]] = _no_hooks
    key: object = None
    scores: ArmScores | None = None  # per test item of ``splits.test``; correct top-1 (1/0) by default
    resample: Callable[[int], Splits] | None = None
    per_seed: Callable[[int], Arm] | None = None

    def splits_for(self, seed: int) -> Splits:
        return self.resample(seed) if self.resample is not None else self.splits

    def at(self, seed: int) -> Arm:
        """The arm ``seed`` trains: this one, or the one ``per_seed`` gives for it."""
        return self.per_seed(seed) if self.per_seed is not None else self


def per_seed(arms: dict[int, Arm]) -> Arm:
    """One arm that trains ``arms[seed]`` at each seed (all on the same test split)."""
    first = next(iter(arms.values()))
    return dataclasses.replace(first, per_seed=arms.__getitem__)


@dataclasses.dataclass
class ArmResult:
    """Every seed of one arm: its test quality, per-item test scores and training figures."""

    seeds: tuple[int, ...]
    quality: list[float]
    stats: list[TrainingStats]
    scores: list[np.ndarray] = dataclasses.field(default_factory=list)  # per seed, one score per test item

    @property
    def spread(self) -> Spread:
        return Spread.from_values(self.quality)

    def to_dict(self) -> dict[str, Any]:
        spread = self.spread
        return {
            "seeds": list(self.seeds),
            "quality": [_finite(q) for q in self.quality],
            "mean": _finite(spread.mean),
            "std": _finite(spread.std),
            "wall_s": [_finite(s.wall_s) for s in self.stats],
            "epochs_run": [s.epochs_run for s in self.stats],
            "stats": [s.to_dict() for s in self.stats],
        }


@dataclasses.dataclass
class TrainingOutcome:
    """What training every arm on every seed found, and the technique's comparisons with the other arms."""

    arms: dict[str, ArmResult]
    modules: dict[str, list[nn.Module]]  # per arm, one trained module per seed (not serialized)
    summary: dict[str, float] = dataclasses.field(default_factory=dict)
    test_split: Split | None = None  # the test split every arm was scored on

    def comparison(self, against: str, arm: str = TECHNIQUE_ARM) -> PairedDifference:
        """``arm`` − ``against`` in test quality over their paired seeds, its interval covering both the seeds and
        the test items (the per-item differences, averaged over the seeds both arms finished)."""
        a, b = self.arms[arm], self.arms[against]
        return PairedDifference.from_pairs(a.quality, b.quality, item_differences(a, b))

    def metrics(self) -> dict[str, float | None]:
        """The flat figures contracts and baselines read: ``training.<arm>.mean``, ``training.effect.*`` (the
        technique against its control), ``training.vs_<arm>.*`` and ``training.<summary key>``."""
        out: dict[str, float | None] = {}
        for name, result in self.arms.items():
            spread = result.spread
            out[f"training.{name}.mean"] = spread.mean
            out[f"training.{name}.std"] = spread.std
        for name in self.arms:
            if name == TECHNIQUE_ARM:
                continue
            diff = self.comparison(name)
            prefix = "training.effect" if name == CONTROL_ARM else f"training.vs_{name}"
            out[f"{prefix}.mean"] = diff.mean
            out[f"{prefix}.ci_low"] = diff.ci_low
            out[f"{prefix}.ci_high"] = diff.ci_high
            out[f"{prefix}.n"] = float(diff.n)
        for key, value in self.summary.items():
            out[f"training.{key}"] = value
        return {k: (v if v is not None and math.isfinite(v) else None) for k, v in out.items()}

    def to_dict(self) -> dict[str, Any]:
        comparisons = []
        for name in self.arms:
            if name != TECHNIQUE_ARM:
                comparisons.append({"arm": TECHNIQUE_ARM, "against": name, "metric": "quality",
                                    **self.comparison(name).to_dict()})
        return {
            "arms": {name: result.to_dict() for name, result in self.arms.items()},
            "comparisons": comparisons,
            "summary": {k: _finite(v) for k, v in self.summary.items()},
            "metrics": self.metrics(),
        }


def _finite(value: float) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


def item_differences(a: ArmResult, b: ArmResult) -> np.ndarray | None:
    """Per test item, ``a``'s score minus ``b``'s averaged over the seeds where both finished (None without
    per-item scores, or where the arms were scored on different items)."""
    pairs = [(x, y) for x, y, qa, qb in zip(a.scores, b.scores, a.quality, b.quality, strict=False)
             if math.isfinite(qa) and math.isfinite(qb) and x.shape == y.shape]
    if not pairs or len(a.scores) != len(a.quality) or len(b.scores) != len(b.quality):
        return None
    return np.mean([x - y for x, y in pairs], axis=0)


def seed_mean(stats: Sequence[TrainingStats], figure: str) -> float:
    """The mean over seeds of a figure the technique's hook reported (NaN where no seed reported it)."""
    values = [s.figures[figure] for s in stats if figure in s.figures and math.isfinite(s.figures[figure])]
    return sum(values) / len(values) if values else math.nan


@dataclasses.dataclass(frozen=True)
class TrainingConfig(TechniqueConfig):
    """Base of every training-time technique: trains its arms over ``seeds`` and compares them.

    Applies to every model with the traits in ``requires`` (a training recipe and class labels by default).
    ``changes_graph`` False means the trained model has the reference's architecture, so its cases run on
    torch eager only (every backend would repeat the reference's speed); True (a student) runs everywhere.
    """

    seeds: tuple[int, ...] = (0, 1, 2)
    changes_graph: ClassVar[bool] = False
    technique: ClassVar[str] = "training"
    report_section: ClassVar[str] = "training"
    report_plots: ClassVar[tuple[str, ...]] = ("grad_norm",)
    requires: ClassVar[tuple[str, ...]] = ("trainable", "labels")

    def validate(self) -> None:
        super().validate()
        if not self.seeds:
            raise ConfigError("`seeds` must hold at least one seed, got an empty list")
        if len(set(self.seeds)) != len(self.seeds) or any(not isinstance(s, int) or s < 0 for s in self.seeds):
            raise ConfigError(f"`seeds` must be distinct whole numbers >= 0, got {list(self.seeds)}")

    @property
    def output_kind(self) -> ArtifactKind:
        return ArtifactKind.TORCH_MODULE

    def runs_on(self, backend: str) -> bool:
        return self.changes_graph or backend in EAGER_BACKENDS

    def arms(self, reference: Reference, ctx: Context) -> dict[str, Arm]:
        """The arms to train: at least ``technique`` and ``control``."""
        raise NotImplementedError

    def summary(self, outcome: TrainingOutcome) -> dict[str, float]:
        """Technique-specific figures (epochs saved, divergence rate...), exposed as ``training.<key>``."""
        return {}

    def summarize(self, outcome: TrainingOutcome, reference: Reference, ctx: Context) -> dict[str, float]:
        """:meth:`summary`, for a technique whose figures also need what its arms were made from (a study)."""
        return self.summary(outcome)

    def details(self, reference: Reference, ctx: Context) -> dict[str, Any]:
        """Free JSON for the report beside the arms' figures (a study's history); none by default."""
        return {}

    # The artifact's key is ``make_key(artifact_prefix, memo key, weights digest)``; the memo key holds the config,
    # the reference, the cache root and :meth:`memo_parts` (what else makes another outcome in the same run).
    artifact_prefix: ClassVar[str] = "trained"

    def memo_parts(self, ctx: Context) -> tuple[object, ...]:
        return ()

    def expectations(self) -> list[Expectation]:
        """Training techniques judge their effect, not retention of the reference's quality: override."""
        return []


def _source_of(obj: object) -> str:
    """Hash of the source that defines ``obj`` (a function, a partial's function, a class)."""
    target = getattr(obj, "func", obj)
    return source_hash(target if inspect.getmodule(target) is not None else type(target))


def arm_key(reference: Reference, config: TrainingConfig, name: str, arm: Arm, seed: int) -> str:
    """Everything that changes one arm's trained weights: the training loop, the model, its data and recipe, the
    reference it may learn from, the seed — and, for an arm with hooks, the technique's code and settings. An arm
    without hooks (a control) is keyed by what it trains alone, so a changed technique does not retrain it."""
    hooked = arm.hooks is not _no_hooks
    settings = {k: v for k, v in config.to_dict().items() if k not in ("name", "seeds")} if hooked else None
    technique_src = source_hash(sys.modules[type(config).__module__]) if hooked else None
    return make_key(
        "arm", settings, technique_src, source_hash(sys.modules[__name__]), source_hash(training_loop),
        name if hooked else "no hooks", _source_of(arm.build),
        arm.recipe.to_dict() if arm.recipe is not None else None,
        splits_fingerprint(arm.splits_for(seed)), arm.key, reference.key, seed, torch.__version__,
    )


def correct(module: nn.Module, split: Split) -> np.ndarray:
    """1.0 for each test item the classifier gets right, 0.0 for each it gets wrong."""
    if split.targets is None:
        raise ConfigError("a training arm is scored on class labels by default; give the Arm per-item `scores`")
    return (predict(module, split).argmax(dim=1).numpy() == split.targets).astype(np.float64)


def _scores(module: nn.Module, arm: Arm) -> np.ndarray:
    return np.asarray((arm.scores or correct)(module, arm.splits.test), dtype=np.float64)


def _load(path: Path, arm: Arm, seed: int) -> tuple[nn.Module, TrainingStats, float]:
    saved = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(saved, dict) or not isinstance(saved.get("state_dict"), dict):
        raise CacheError(f"{path} does not hold a trained arm")
    with reproducible(seed):
        module = arm.build()
    try:
        module.load_state_dict(saved["state_dict"], strict=True)
    except RuntimeError as exc:
        raise CacheError(f"{path} does not fit its arm: {str(exc).splitlines()[0]}") from exc
    quality = saved.get("quality")
    if not isinstance(quality, float):
        raise CacheError(f"{path} holds no quality figure")
    return module.eval(), TrainingStats.from_dict(saved.get("training") or {}), quality


def arm_path(reference: Reference, config: TrainingConfig, name: str, arm: Arm, seed: int, ctx: Context) -> Path:
    """Where one arm at one seed is cached (``arm`` already at that seed)."""
    key = arm_key(reference, config, name, arm, seed)
    if ctx.seed_offset:
        key = make_key(key, "seed offset", ctx.seed_offset)
    return ctx.cache.path(TRAINED_NAMESPACE, key, ".pt")


def train_arm(reference: Reference, config: TrainingConfig, name: str, arm: Arm, seed: int, ctx: Context,
              ) -> tuple[nn.Module, TrainingStats, float]:
    """One arm at one seed, from the cache or trained now: the module, its training figures and test quality
    (the mean of its per-item scores, :func:`arm_scores`)."""
    arm = arm.at(seed)
    label = f"{reference.spec.name}-{config.name}/{name}/seed {seed}"
    path = arm_path(reference, config, name, arm, seed, ctx)
    loaded: list[tuple[nn.Module, TrainingStats, float]] = []

    def create(tmp: Path) -> None:
        if arm.recipe is None:
            with reproducible(seed):
                module = arm.build().eval()
            stats = TrainingStats(label=label)
        else:
            recipe = dataclasses.replace(arm.recipe, seed=seed + ctx.seed_offset)
            module, stats = fit(arm.build, recipe, arm.splits_for(seed), list(arm.hooks(seed)), label=label)
        with reproducible(seed):  # pinned threads: the same figure in a training process and here
            quality = float(_scores(module, arm).mean()) if not stats.diverged else math.nan
        torch.save({"state_dict": module.state_dict(), "training": stats.to_dict(), "quality": float(quality)}, tmp)

    def validate(candidate: Path) -> None:
        loaded[:] = [_load(candidate, arm, seed)]

    ctx.cache.get_or_create(path, create, validate)
    return loaded[-1]


def arm_scores(module: nn.Module, arm: Arm, quality: float) -> np.ndarray:
    """Per-item test scores of a trained arm (NaN for a run that diverged): what paired intervals resample."""
    if not math.isfinite(quality):
        return np.full(len(arm.splits.test), math.nan)
    return _scores(module, arm)


def train_arms(reference: Reference, config: TrainingConfig, ctx: Context) -> TrainingOutcome:
    """Train (or load) every arm of ``config`` on every seed and compare them."""
    arms = config.arms(reference, ctx)
    missing = {TECHNIQUE_ARM, CONTROL_ARM} - set(arms)
    if missing:
        raise ConfigError(f"{type(config).__name__}.arms() must return {', '.join(sorted(missing))} as well")
    jobs = [(name, seed) for name in arms for seed in config.seeds]
    if any(not arm_path(reference, config, name, arms[name].at(seed), seed, ctx).exists() for name, seed in jobs):
        # Cold: each arm trains on one thread, so the others go to forked processes on the idle CPUs; the loop
        # below loads what they cached (and trains here whatever a process failed to, raising its error).
        forked.spread(jobs, lambda job: train_arm(reference, config, job[0], arms[job[0]], job[1], ctx),
                      child_setup=lambda: torch.set_num_threads(1))
    results: dict[str, ArmResult] = {}
    modules: dict[str, list[nn.Module]] = {}
    for name, arm in arms.items():
        trained = [train_arm(reference, config, name, arm, seed, ctx) for seed in config.seeds]
        modules[name] = [m for m, _, _ in trained]
        results[name] = ArmResult(tuple(config.seeds), [q for _, _, q in trained], [s for _, s, _ in trained],
                                  [arm_scores(m, arm.at(seed), q) for (m, _, q), seed in zip(trained, config.seeds,
                                                                                             strict=True)])
    outcome = TrainingOutcome(results, modules, test_split=arms[TECHNIQUE_ARM].splits.test)
    outcome.summary = config.summarize(outcome, reference, ctx)
    return outcome


def apply_training(reference: Reference, config: TrainingConfig, ctx: Context) -> Artifact:
    """The verb for every training technique: train its arms, return the technique arm's first-seed model.

    Each config is trained once per run: its outcome is kept in the run's memo store (``ctx.memos``)."""
    memo_key = make_key(config.to_dict(), reference.key, str(ctx.cache.root), *config.memo_parts(ctx))
    memo = ctx.memos.store(TRAINED_MEMO)
    if memo_key not in memo:
        outcome = train_arms(reference, config, ctx)
        memo[memo_key] = (outcome, weights_digest(outcome.modules[TECHNIQUE_ARM][0]),
                          config.details(reference, ctx))
    outcome, digest, details = memo[memo_key]
    module = outcome.modules[TECHNIQUE_ARM][0]
    stats = outcome.arms[TECHNIQUE_ARM].stats[0]
    if stats.diverged:
        raise TechniqueError(f"{reference.spec.name}-{config.name}: the technique's first seed diverged; "
                          "its model cannot be measured")
    return Artifact(
        ArtifactKind.TORCH_MODULE, Precision.FP32, key=make_key(config.artifact_prefix, memo_key, digest),
        module=module, training=outcome.to_dict(), weights=digest, details=dict(details),
    )


__all__ = ["Arm", "ArmResult", "TrainingConfig", "TrainingOutcome", "apply_training", "arm_scores", "correct",
           "per_seed", "seed_mean", "train_arm", "train_arms"]
