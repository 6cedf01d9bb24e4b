"""ModelSpec: how to build a model, its data, its quality metric, example inputs and training recipe."""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from harness.config import require_range
from harness.errors import ConfigError
from harness.metrics.quality import QualityMetric
from harness.registry import Registry

Inputs = tuple[torch.Tensor, ...]


class Task(enum.StrEnum):
    CLASSIFICATION = "classification"
    EMBEDDING = "embedding"


class InputKind(enum.StrEnum):
    """What a model reads; techniques that move inputs (augmentation, dataset distillation) choose by it."""

    IMAGE = "image"  # float (batch, channels, height, width)
    TABULAR = "tabular"  # float (batch, features)
    TOKENS = "tokens"  # integer token ids (batch, length)


@dataclasses.dataclass(frozen=True)
class Split:
    """One split: model inputs (a tuple of tensors, batch first) and targets (labels) where the task has them."""

    inputs: Inputs
    targets: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.inputs[0].shape[0])

    def batch(self, start: int, stop: int) -> Inputs:
        return tuple(t[start:stop] for t in self.inputs)


@dataclasses.dataclass(frozen=True)
class Splits:
    """train / val / test with a fixed seed; ``extra`` carries task data such as sentence pairs."""

    train: Split
    val: Split
    test: Split
    extra: Mapping[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class TrainRecipe:
    """How a zoo model is trained; every field is part of the weights' cache key."""

    epochs: int
    lr: float
    batch_size: int
    weight_decay: float = 0.0
    seed: int = 0
    optimizer: str = "adamw"  # "adamw" or "sgd"
    momentum: float = 0.9  # SGD only

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"`{name}` must be a whole number >= 1, got {value!r}")
        if isinstance(self.lr, bool) or not isinstance(self.lr, int | float) or not self.lr > 0:
            raise ConfigError(f"`lr` must be > 0, got {self.lr}")
        require_range("weight_decay", self.weight_decay, 0.0, 1.0)
        if self.optimizer not in ("adamw", "sgd"):
            raise ConfigError(f"`optimizer` must be one of adamw, sgd; got {self.optimizer!r}")

    def to_dict(self) -> dict[str, Any]:
        """The fields that change weights; defaults added later are left out, so older cache keys still hold."""
        out = dataclasses.asdict(self)
        if self.optimizer == "adamw":
            out.pop("optimizer")
            out.pop("momentum")
        return out


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """Everything optbench needs to know about one model of the zoo.

    ``version`` is bumped by hand when weights change for a reason the cache key cannot see.
    """

    name: str
    task: Task
    build: Callable[[], nn.Module]
    data: Callable[[], Splits]
    example_inputs: Callable[[int], Inputs]
    quality: QualityMetric
    recipe: TrainRecipe | None
    input_names: tuple[str, ...]
    throughput_batch: int = 32
    calibration_size: int = 64
    description: str = ""
    version: str = "1"
    tags: frozenset[str] = frozenset()  # e.g. {"conv"}: traits a model declares (see model_zoo.traits)
    # What the model reads; None: inferred from ``example_inputs`` (integer ids: tokens; 4-D floats: images).
    input_kind: InputKind | None = None
    # Knowledge distillation: the smaller architecture to distil into. None: a student registered for the model's
    # name (model_zoo.students), else ``build_variant`` at half width.
    student: Callable[[], nn.Module] | None = None
    # Suites or presets ("suite" or "suite/preset") this model sits out, each with the reason shown in the run's
    # header: a budget the model's owner chose, never silence.
    declines: Mapping[str, str] = dataclasses.field(default_factory=dict)
    # Hyperparameter tuning (harness.techniques.tuning): the space the model is tuned over, in the plain format of
    # harness.search.space ({"lr": ("log", 1e-4, 1e-2), "width": ("choice", 0.5, 1.0)}), and a builder taking
    # ``width`` (a multiplier of the hidden sizes). None: the model declares no search.
    search_space: Mapping[str, tuple[Any, ...]] | None = None
    build_variant: Callable[..., nn.Module] | None = None
    # What a person reads in extracted rules (harness.analysis.interpretability): a table's feature names and the
    # classes' names, in the model's input and output order. None: "feature 3", "class 1".
    feature_names: tuple[str, ...] | None = None
    class_names: tuple[str, ...] | None = None
    # A token model's own tokenizer (a Hugging Face-style callable: texts, padding, truncation, max_length,
    # return_tensors → its named inputs): what makes its inputs from text the harness writes (shifted sentences in
    # the drift suite, a corpus to fine-tune on). None: the model reads no text the harness can make.
    tokenizer: Callable[[], Any] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ConfigError(f"`name` must be a non-empty string, got {self.name!r}")
        if self.recipe is not None and not isinstance(self.recipe, TrainRecipe):
            raise ConfigError(f"{self.name}: `recipe` must be a TrainRecipe or None, got {type(self.recipe).__name__}")
        if self.input_kind is not None and not isinstance(self.input_kind, InputKind):
            raise ConfigError(f"{self.name}: `input_kind` must be one of {', '.join(k.value for k in InputKind)} "
                              f"(model_zoo.InputKind), got {self.input_kind!r}")
        bad = [k for k, v in self.declines.items() if not isinstance(v, str) or not v.strip()]
        if bad:
            raise ConfigError(f"{self.name}: `declines[{bad[0]!r}]` must give the reason as text")


MODELS: Registry[ModelSpec] = Registry("model")


def register_model(spec: ModelSpec) -> ModelSpec:
    """Add a spec to the zoo; a second model with the same name is refused."""
    return MODELS.add(spec.name, spec)
