"""Dataset distillation by distribution matching (Zhao & Bilen 2023, "Dataset Condensation with Distribution
Matching"): k synthetic images per class whose embeddings, under many randomly initialised networks of the model's
own architecture, have the same class means as the real training images.

Measured by what it is for — training cost: fresh models of the zoo architecture are trained on the synthetic set,
on k random real images per class (the control: same k, same seeds) and on the full training split, and tested on
the real test split; accuracy per second of training is shown beside accuracy. Each seed draws its own real images,
so the comparison with random real images covers which images were drawn.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from harness.artifact import Artifact
from harness.cache import make_key, source_hash
from harness.config import require_int, require_range
from harness.core import Expectation
from harness.errors import CacheError, ConfigError
from harness.techniques.base import Context, register_preset, register_technique
from harness.techniques.training import CONTROL_ARM, TECHNIQUE_ARM, Arm, TrainingConfig, TrainingOutcome, apply_training
from harness.training import reproducible
from model_zoo.datasets import splits_fingerprint
from model_zoo.reference import Reference
from model_zoo.spec import Split, Splits, TrainRecipe

NAMESPACE = "distilled"
TRAIN_STEPS = 300  # optimizer steps for a model trained on a condensed set, whatever its size
REAL_PER_CLASS = 64  # real images per class in each matching step


def _embedder(module: nn.Module) -> nn.Module:
    """The input of the model's last Linear layer (its penultimate features), captured by a forward pre-hook."""
    last = [m for m in module.modules() if isinstance(m, nn.Linear)][-1]
    captured: list[torch.Tensor] = []
    last.register_forward_pre_hook(lambda _m, args: captured.append(args[0]))

    class Embed(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            captured.clear()
            module(x)
            return captured[-1]

    return Embed()


def per_class_indices(targets: np.ndarray, k: int, seed: int) -> np.ndarray:
    """``k`` random indices of each class, sorted; more than a class holds is a ConfigError."""
    rng = np.random.default_rng(seed)
    out = []
    for c in np.unique(targets):
        idx = np.flatnonzero(targets == c)
        if k > len(idx):
            raise ConfigError(f"`images_per_class` {k} is more than class {c} holds in the training split ({len(idx)})")
        out.append(rng.choice(idx, size=k, replace=False))
    return np.sort(np.concatenate(out))


def distribution_matching(build: Callable[[], nn.Module], train: Split, k: int, iterations: int, lr: float,
                          seed: int) -> tuple[torch.Tensor, np.ndarray]:
    """The condensed set (images, labels): initialised from k real images per class, then moved so that its class
    means of embeddings match the real ones under a fresh random network at every iteration."""
    x, y = train.inputs[0], train.targets
    assert y is not None
    start = per_class_indices(y, k, seed)
    labels = y[start].copy()
    classes = np.unique(y)
    with reproducible(seed):
        syn = x[start].clone().requires_grad_(True)
        opt = torch.optim.SGD([syn], lr=lr, momentum=0.5)
        g = np.random.default_rng(seed)
        for it in range(iterations):
            torch.manual_seed(seed * 100_003 + it)
            embed = _embedder(build())
            loss = torch.zeros(())
            for c in classes:
                pool = np.flatnonzero(y == c)
                real_idx = g.choice(pool, size=min(REAL_PER_CLASS, len(pool)), replace=False)
                with torch.no_grad():
                    real_mean = embed(x[real_idx]).mean(0)
                loss = loss + ((real_mean - embed(syn[labels == c]).mean(0)) ** 2).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
    images = syn.detach()
    if not bool(torch.isfinite(images).all()):
        raise ConfigError(f"the synthetic set holds NaN or Inf after {iterations} iterations at `lr` {lr}; "
                          "lower the learning rate")
    return images, labels


def write_grid_png(images: torch.Tensor, labels: np.ndarray, path: Path, scale: int = 4) -> None:
    """A grayscale PNG of the images, one row per class, each pixel ``scale``×``scale``, written by Pillow."""
    from PIL import Image

    classes = np.unique(labels)
    rows = [images[torch.from_numpy(labels == c)] for c in classes]
    per_row = max(len(r) for r in rows)
    h, w = images.shape[-2:]
    canvas = np.full(((h + 1) * len(rows), (w + 1) * per_row), 255, dtype=np.uint8)
    for i, row in enumerate(rows):
        for j, img in enumerate(row):
            pixels = img[0].clamp(0, 1).numpy()
            canvas[i * (h + 1): i * (h + 1) + h, j * (w + 1): j * (w + 1) + w] = (255 * (1 - pixels)).astype(np.uint8)
    Image.fromarray(np.kron(canvas, np.ones((scale, scale), dtype=np.uint8)), mode="L").save(path, format="PNG")


MIN_SYNTHETIC_SHIFT = 0.001  # the proof that matching acted: the images moved this far from their real starts


@dataclasses.dataclass(frozen=True)
class Condensed:
    """One seed's synthetic set: images, labels, the real images it started from, and what making it cost."""

    images: torch.Tensor
    labels: np.ndarray
    start: torch.Tensor
    seconds: float
    grid: Path

    @property
    def shift(self) -> float:
        """How far matching moved the images from their start: mean |synthetic − start| / mean |start|."""
        return float((self.images - self.start).abs().mean() / self.start.abs().mean().clamp(min=1e-12))


@dataclasses.dataclass(frozen=True)
class DatasetDistillationConfig(TrainingConfig):
    """Condense the training split into ``images_per_class`` synthetic images per class, once per seed.

    Each seed draws its own k real images per class: the control trains on them, and the synthetic set of that
    seed starts from them — the two arms share that draw (said in the record), and the effect's interval covers
    it because every seed draws anew.

    Contracts: the images moved from their start (the proof that matching acted); models trained on the
    synthetic set beat models trained on the random real images, judged on the interval over seeds and test items.
    """

    images_per_class: int = 10
    iterations: int = 200
    lr: float = 1.0
    technique: ClassVar[str] = "dataset_distillation"
    report_section: ClassVar[str] = "dataset_distillation"
    requires: ClassVar[tuple[str, ...]] = ("trainable", "labels", "image")

    def validate(self) -> None:
        super().validate()
        require_int("images_per_class", self.images_per_class, 1)
        require_int("iterations", self.iterations, 1)
        require_range("lr", self.lr, 0.0, 100.0, low_open=True)

    def condensed(self, reference: Reference, ctx: Context, seed: int) -> Condensed:
        """The synthetic set of ``seed`` (cached under the data, the model's source, the settings, the seed and this
        code), the seconds it took to make, and its image grid."""
        spec, train = reference.spec, reference.splits.train
        key = make_key("dm", splits_fingerprint(reference.splits), source_hash(spec.build), self.images_per_class,
                       self.iterations, self.lr, seed, source_hash(sys.modules[__name__]), torch.__version__)
        path = ctx.cache.path(NAMESPACE, key, ".pt")
        loaded: list[tuple[torch.Tensor, np.ndarray, float]] = []

        def create(tmp: Path) -> None:
            started = time.perf_counter()
            images, labels = distribution_matching(spec.build, train, self.images_per_class, self.iterations,
                                                   self.lr, seed=seed)
            torch.save({"images": images, "labels": torch.from_numpy(labels),
                        "seconds": time.perf_counter() - started}, tmp)

        def validate(candidate: Path) -> None:
            saved = torch.load(candidate, map_location="cpu", weights_only=True)
            images, labels = saved.get("images"), saved.get("labels")
            if not isinstance(images, torch.Tensor) or not bool(torch.isfinite(images).all()):
                raise CacheError(f"{candidate} holds no finite synthetic images")
            loaded[:] = [(images, labels.numpy(), float(saved.get("seconds", math.nan)))]

        ctx.cache.get_or_create(path, create, validate)
        images, labels, seconds = loaded[-1]
        assert train.targets is not None
        start = train.inputs[0][torch.from_numpy(per_class_indices(train.targets, self.images_per_class, seed))]
        grid = path.with_suffix(".png")
        if not grid.exists():
            write_grid_png(images, labels, grid)
        return Condensed(images, labels, start, seconds, grid)

    def arms(self, reference: Reference, ctx: Context) -> dict[str, Arm]:
        spec, splits = reference.spec, reference.splits
        assert spec.recipe is not None and splits.train.targets is not None
        targets = splits.train.targets
        n = self.images_per_class * len(np.unique(targets))
        batch = min(spec.recipe.batch_size, n)
        small = TrainRecipe(epochs=max(1, TRAIN_STEPS * batch // n), lr=spec.recipe.lr, batch_size=batch,
                            weight_decay=spec.recipe.weight_decay)

        def synthetic(seed: int) -> Splits:
            made = self.condensed(reference, ctx, seed)
            return dataclasses.replace(splits, train=Split((made.images,), made.labels))

        def random_real(seed: int) -> Splits:
            real = per_class_indices(targets, self.images_per_class, seed=seed)
            return dataclasses.replace(splits, train=Split((splits.train.inputs[0][torch.from_numpy(real)],),
                                                           targets[real].copy()))

        key = {"k": self.images_per_class, "draw": "per seed"}
        return {
            TECHNIQUE_ARM: Arm(spec.build, small, splits, key=key, resample=synthetic),
            CONTROL_ARM: Arm(spec.build, small, splits, key={**key, "real": True}, resample=random_real),
            "full": Arm(spec.build, spec.recipe, splits),
        }

    def summary(self, outcome: TrainingOutcome) -> dict[str, float]:
        out: dict[str, float] = {}
        for arm, result in outcome.arms.items():
            wall = [s.wall_s for s in result.stats]
            mean_wall = sum(wall) / len(wall)
            out[f"{arm}_train_s"] = mean_wall
            out[f"{arm}_acc_per_train_s"] = result.spread.mean / mean_wall if mean_wall > 0 else math.nan

        def items(arm: str) -> float:
            stats = outcome.arms[arm].stats[0]
            return stats.samples_seen / max(stats.epochs_run, 1)

        full, kept = items("full"), items(TECHNIQUE_ARM)
        out["images_kept"] = kept
        out["compression"] = full / kept if kept else math.nan
        return out

    def expectations(self) -> list[Expectation]:
        return [
            Expectation("images_moved", "training.synthetic_shift", ">=", MIN_SYNTHETIC_SHIFT),
            Expectation("beats_random_real", "training.effect.mean", ">", 0.0, decision="interval", unit="seeds"),
        ]


@register_technique(DatasetDistillationConfig)
def apply_dataset_distillation(reference: Reference, config: DatasetDistillationConfig, ctx: Context) -> Artifact:
    artifact = apply_training(reference, config, ctx)
    made = [config.condensed(reference, ctx, seed) for seed in config.seeds]
    artifact.details["images"] = str(made[0].grid)
    artifact.details["shared_draw"] = ("each seed's synthetic set starts from the k real images per class its "
                                       "control trains on")
    if artifact.training is not None:
        figures = {"distill_s": sum(m.seconds for m in made) / len(made),
                   "synthetic_shift": sum(m.shift for m in made) / len(made)}
        artifact.training["summary"].update(figures)
        artifact.training["metrics"].update({f"training.{k}": v for k, v in figures.items()})
    return artifact


SUITE = "dataset_distillation"
register_preset(SUITE, DatasetDistillationConfig(name="dm_k1", images_per_class=1))
register_preset(SUITE, DatasetDistillationConfig(name="dm_k10", images_per_class=10))
