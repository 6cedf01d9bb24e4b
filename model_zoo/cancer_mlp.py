"""cancer_mlp: a small MLP on scikit-learn's breast-cancer features, the zoo's tabular (dense-only) model.

It has no convolutions, so techniques that target linear layers or tabular data have a model to act on.
"""

from __future__ import annotations

import logging

import torch
from torch import nn

from harness.metrics.quality import Accuracy
from model_zoo.datasets import cancer_splits, take
from model_zoo.spec import Inputs, ModelSpec, Splits, Task, TrainRecipe, register_model

logger = logging.getLogger(__name__)

NUM_FEATURES = 30
NUM_CLASSES = 2


class CancerMLP(nn.Module):
    """30 standardised features → 64 → 32 → 2 logits, ReLU between, with dropout while training."""

    def __init__(self, num_features: int = NUM_FEATURES, num_classes: int = NUM_CLASSES) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(num_features, 64),
            nn.ReLU(),
            nn.Dropout(0.1),
            nn.Linear(64, 32),
            nn.ReLU(),
            nn.Linear(32, num_classes),
        )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Logits (B, 2) for standardised features (B, 30)."""
        return self.net(features)


def build() -> CancerMLP:
    return CancerMLP()


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
    )
)
