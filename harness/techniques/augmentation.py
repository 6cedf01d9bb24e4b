"""Data augmentation in a limited-data regime, chosen by what the model reads: small affine moves for images
(Kornia's tensor augmentations: no torchvision needed), feature noise scaled by each feature's spread and mixup for
tables, token dropout for token ids — applied per batch during training.

Measured where augmentation matters: a stratified fraction of the training split (10 % of digits: about eleven
images a class), against the same model trained on the same items, seeds and epochs without augmentation. The hook
counts the batches it changed and by how much: the proof that it acted.
"""

from __future__ import annotations

import dataclasses
import math
from typing import ClassVar

import numpy as np
import torch
from sklearn.model_selection import train_test_split
from torch import nn

from harness.config import require_int, require_range
from harness.core import Expectation
from harness.errors import ConfigError
from harness.techniques.base import Context, ReportFigure, register_preset, register_technique
from harness.techniques.training import (
    CONTROL_ARM,
    TECHNIQUE_ARM,
    Arm,
    TrainingConfig,
    TrainingOutcome,
    apply_training,
    seed_mean,
)
from harness.training import Hook
from model_zoo.reference import Reference
from model_zoo.spec import Inputs, Split, Splits

IMAGE_AUGMENTATIONS = ("shift", "rotate", "scale")
TOKEN_AUGMENTATIONS = ("token_dropout",)
AUGMENTATIONS = (*IMAGE_AUGMENTATIONS, "noise", "mixup", *TOKEN_AUGMENTATIONS)
MIN_AUGMENTED_SHARE = 0.5  # the proof that augmentation acted: at least this share of the batches changed
SUBSET_SEED = 0  # the limited-data subset is the same for every seed and arm


def limited_splits(splits: Splits, fraction: float, seed: int = SUBSET_SEED) -> Splits:
    """``splits`` with a stratified ``fraction`` of its training split (val and test unchanged)."""
    train = splits.train
    if fraction >= 1.0:
        return splits
    n = len(train)
    idx = np.arange(n)
    keep, _ = train_test_split(idx, train_size=fraction, random_state=seed, stratify=train.targets)
    keep = torch.from_numpy(np.sort(keep))
    targets = train.targets[keep.numpy()].copy() if train.targets is not None else None
    return dataclasses.replace(splits, train=Split(tuple(t[keep].contiguous() for t in train.inputs), targets))


class Augment(Hook):
    """Transforms each training batch: geometric moves through one Kornia ``RandomAffine``, Gaussian noise (times
    ``noise_scale``, each feature's spread), mixup (Zhang et al. 2018: convex combinations of pairs of inputs,
    and of their losses) and token dropout (ids replaced by 0, the padding id, at rate ``token_dropout``)."""

    name = "augmentation"

    def __init__(self, augmentations: tuple[str, ...], shift: float, degrees: float, scale: float,
                 noise_std: float, mixup_alpha: float, noise_scale: torch.Tensor | None = None,
                 token_dropout: float = 0.0) -> None:
        self.noise_std = noise_std if "noise" in augmentations else 0.0
        self.noise_scale = noise_scale
        self.mixup_alpha = mixup_alpha if "mixup" in augmentations else 0.0
        self.token_dropout = token_dropout if "token_dropout" in augmentations else 0.0
        self.batches = self.changed = 0
        self.change_sum = 0.0
        self.affine: nn.Module | None = None
        if set(augmentations) & set(IMAGE_AUGMENTATIONS):
            import kornia.augmentation as K  # imported only where images are augmented

            self.affine = K.RandomAffine(
                degrees=degrees if "rotate" in augmentations else 0.0,
                translate=(shift, shift) if "shift" in augmentations else None,
                scale=(1 - scale, 1 + scale) if "scale" in augmentations else None,
                p=1.0,
                padding_mode="zeros",
            )
        self._mix: tuple[torch.Tensor, float] | None = None

    def batch(self, inputs: Inputs, targets: torch.Tensor | None) -> tuple[Inputs, torch.Tensor | None]:
        original = inputs[0]
        x = original
        if self.token_dropout > 0:
            x = torch.where(torch.rand(x.shape) < self.token_dropout, torch.zeros_like(x), x)
        if self.affine is not None:
            x = self.affine(x)
        if self.noise_std > 0:
            noise = self.noise_std * torch.randn_like(x)
            x = x + (noise * self.noise_scale if self.noise_scale is not None else noise)
        self._mix = None
        if self.mixup_alpha > 0 and len(x) > 1:
            lam = float(np.random.beta(self.mixup_alpha, self.mixup_alpha))
            perm = torch.randperm(len(x))
            x = lam * x + (1 - lam) * x[perm]
            self._mix = (perm, lam)
        self._count(original, x)
        return (x, *inputs[1:]), targets

    def _count(self, before: torch.Tensor, after: torch.Tensor) -> None:
        self.batches += 1
        with torch.no_grad():
            change = float((after.double() - before.double()).abs().mean() / before.double().abs().mean().clamp(
                min=1e-12))
        if change > 0:
            self.changed += 1
            self.change_sum += change

    def figures(self) -> dict[str, float]:
        return {"augmented_share": self.changed / self.batches if self.batches else 0.0,
                "input_change": self.change_sum / self.changed if self.changed else 0.0}

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor | None, inputs: Inputs,
             loss: torch.Tensor | None) -> torch.Tensor | None:
        if self._mix is None or targets is None:
            return loss
        perm, lam = self._mix
        ce = nn.functional.cross_entropy
        return lam * ce(outputs, targets) + (1 - lam) * ce(outputs, targets[perm])


@dataclasses.dataclass(frozen=True)
class AugmentationConfig(TrainingConfig):
    """Train on ``data_fraction`` of the training split with ``augmentations``, for ``epochs`` (None: the model's
    recipe × ``epochs_factor``, more epochs for less data). Image moves need image inputs, token dropout token
    ids; noise and mixup are the tabular presets' (noise scaled by each feature's spread on the training split).

    Contracts: the hook changed at least half the batches (it acted); the augmented model beats its control,
    judged on the interval of the paired difference over seeds and test items (superiority, or inconclusive).
    """

    augmentations: tuple[str, ...] = ("shift", "rotate", "scale")
    data_fraction: float = 0.1
    epochs: int | None = None
    epochs_factor: float = 5.0
    shift: float = 0.125  # of the image side: one pixel of 8
    degrees: float = 10.0
    scale: float = 0.1
    noise_std: float = 0.05
    mixup_alpha: float = 0.2
    token_dropout: float = 0.1
    technique: ClassVar[str] = "augmentation"
    report_figures: ClassVar[tuple[ReportFigure, ...]] = (ReportFigure("training.time_cost", "train time", "{:.2f}x"),)
    report_plots: ClassVar[tuple[str, ...]] = ()

    def validate(self) -> None:
        super().validate()
        if not self.augmentations:
            raise ConfigError("`augmentations` must name at least one of " + ", ".join(AUGMENTATIONS))
        unknown = [a for a in self.augmentations if a not in AUGMENTATIONS]
        if unknown:
            raise ConfigError(
                f"`augmentations` holds unknown {unknown[0]!r}; expected any of {', '.join(AUGMENTATIONS)}"
            )
        if not (0 < self.data_fraction <= 1):
            raise ConfigError(f"`data_fraction` must be in (0, 1], got {self.data_fraction!r}")
        if self.epochs is not None:
            require_int("epochs", self.epochs, 1)
        require_range("epochs_factor", self.epochs_factor, 0.1, 100.0)
        require_range("token_dropout", self.token_dropout, 0.0, 1.0, high_open=True)
        require_range("shift", self.shift, 0.0, 0.5)
        require_range("scale", self.scale, 0.0, 0.9)
        for name in ("degrees", "noise_std", "mixup_alpha"):
            if not getattr(self, name) >= 0:
                raise ConfigError(f"`{name}` must be >= 0, got {getattr(self, name)!r}")

    def requirements(self) -> tuple[str, ...]:
        if set(self.augmentations) & set(IMAGE_AUGMENTATIONS):
            kind = "image"
        elif set(self.augmentations) & set(TOKEN_AUGMENTATIONS):
            kind = "tokens"
        else:
            kind = "tabular"
        return (*self.requires, kind)

    def hook(self, noise_scale: torch.Tensor | None = None) -> Augment:
        return Augment(self.augmentations, self.shift, self.degrees, self.scale, self.noise_std, self.mixup_alpha,
                       noise_scale, self.token_dropout)

    def arms(self, reference: Reference, ctx: Context) -> dict[str, Arm]:
        spec = reference.spec
        assert spec.recipe is not None
        recipe = dataclasses.replace(spec.recipe, epochs=self.epochs or round(self.epochs_factor * spec.recipe.epochs))
        splits = limited_splits(reference.splits, self.data_fraction)
        train = splits.train.inputs[0]
        scale = train.std(dim=0, keepdim=True).clamp(min=1e-8) if train.is_floating_point() and len(train) > 1 else None
        key = {"fraction": self.data_fraction, "subset_seed": SUBSET_SEED}
        return {
            TECHNIQUE_ARM: Arm(spec.build, recipe, splits, hooks=lambda seed: [self.hook(scale)], key=key),
            CONTROL_ARM: Arm(spec.build, recipe, splits, key=key),
        }

    def summary(self, outcome: TrainingOutcome) -> dict[str, float]:
        tech, ctrl = outcome.arms[TECHNIQUE_ARM].stats, outcome.arms[CONTROL_ARM].stats
        tech_wall, ctrl_wall = sum(s.wall_s for s in tech), sum(s.wall_s for s in ctrl)
        return {
            "train_items": float(tech[0].samples_seen / max(tech[0].epochs_run, 1)),
            "time_cost": tech_wall / ctrl_wall if ctrl_wall > 0 else math.nan,  # training time, × the control's
            "augmented_share": seed_mean(tech, "augmented_share"),
            "input_change": seed_mean(tech, "input_change"),
        }

    def expectations(self) -> list[Expectation]:
        return [
            Expectation("augmentation_acted", "training.augmented_share", ">=", MIN_AUGMENTED_SHARE),
            Expectation("beats_control", "training.effect.mean", ">", 0.0, decision="interval", unit="seeds"),
        ]


register_technique(AugmentationConfig)(apply_training)

SUITE = "augmentation"
register_preset(SUITE, AugmentationConfig(name="affine_10pct", seeds=(0, 1, 2, 3, 4)))
register_preset(SUITE, AugmentationConfig(name="noise_10pct", augmentations=("noise",), noise_std=0.3,
                                          seeds=(0, 1, 2, 3, 4)))
register_preset(SUITE, AugmentationConfig(name="token_dropout_10pct", augmentations=("token_dropout",),
                                          seeds=(0, 1, 2, 3, 4)))
