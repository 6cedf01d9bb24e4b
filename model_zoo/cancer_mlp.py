"""cancer_mlp: a small MLP on scikit-learn's breast-cancer features, the zoo's tabular (dense-only) model.

It has no convolutions, so techniques that target linear layers or tabular data have a model to act on.
"""

from __future__ import annotations

import torch
from sklearn.datasets import load_breast_cancer
from torch import nn

from harness.metrics.quality import Accuracy
from model_zoo.datasets import cancer_splits, take
from model_zoo.spec import InputKind, Inputs, ModelSpec, Splits, Task, TrainRecipe, register_model

NUM_FEATURES = 30
NUM_CLASSES = 2


class CancerMLP(nn.Module):
    """30 standardised features → 64 → 32 → 2 logits, ReLU between, with dropout while training."""

    def __init__(self, num_features: int = NUM_FEATURES, num_classes: int = NUM_CLASSES, width: float = 1.0) -> None:
        super().__init__()
        h1, h2 = max(1, round(64 * width)), max(1, round(32 * width))
        self.net = nn.Sequential(
            nn.Linear(num_features, h1),
            nn.ReLU(),
            nn.Dropout(0.1),
            nn.Linear(h1, h2),
            nn.ReLU(),
            nn.Linear(h2, num_classes),
        )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Logits (B, 2) for standardised features (B, 30)."""
        return self.net(features)


def build() -> CancerMLP:
    return CancerMLP()


def build_variant(width: float = 1.0) -> CancerMLP:
    """The same MLP with its hidden sizes scaled by ``width`` (for hyperparameter search)."""
    return CancerMLP(width=width)


def data() -> Splits:
    return cancer_splits()


def example_inputs(batch: int) -> Inputs:
    """``batch`` real training rows (repeated when ``batch`` exceeds the split)."""
    return take(data().train, batch)


SPEC = register_model(
    ModelSpec(
        name="cancer_mlp",
        task=Task.CLASSIFICATION,
        build=build,
        data=data,
        example_inputs=example_inputs,
        quality=Accuracy(),
        recipe=TrainRecipe(epochs=30, lr=3e-3, batch_size=32, weight_decay=1e-4, seed=0),
        input_names=("features",),
        throughput_batch=64,
        description="MLP 30-64-32-2 on breast-cancer features",
        tags=frozenset({"mlp", "tabular"}),
        input_kind=InputKind.TABULAR,
        search_space={"lr": ("log", 3e-4, 3e-2), "weight_decay": ("log", 1e-6, 1e-1),
                      "batch_size": ("choice", 16, 32, 64), "width": ("choice", 0.5, 1.0, 2.0)},
        build_variant=build_variant,
        feature_names=tuple(str(n) for n in load_breast_cancer().feature_names),
        class_names=tuple(str(n) for n in load_breast_cancer().target_names),
    )
)
