"""digits_cnn: a small conv net on scikit-learn's 8×8 digits, the zoo's fastest classification model.

Small enough to train in seconds, so it serves as the default model for quick technique and backend checks.
"""

from __future__ import annotations

import torch
from torch import nn

from harness.metrics.quality import Accuracy
from model_zoo.datasets import digits_splits, take
from model_zoo.spec import InputKind, Inputs, ModelSpec, Splits, Task, TrainRecipe, register_model

NUM_CLASSES = 10


class DigitsCNN(nn.Module):
    """Three 3×3 conv layers with max-pooling, then a two-layer classifier head; about 40 k parameters."""

    def __init__(self, num_classes: int = NUM_CLASSES, width: float = 1.0) -> None:
        super().__init__()
        c1, c2, c3 = (max(1, round(c * width)) for c in (16, 32, 64))
        self.features = nn.Sequential(
            nn.Conv2d(1, c1, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.Conv2d(c1, c2, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),  # 8x8 -> 4x4
            nn.Conv2d(c2, c3, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),  # 4x4 -> 2x2
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(c3 * 2 * 2, 64),
            nn.ReLU(),
            nn.Linear(64, num_classes),
        )

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """Logits (B, 10) for images (B, 1, 8, 8) in [0, 1]."""
        return self.classifier(self.features(pixels))


def build() -> DigitsCNN:
    return DigitsCNN()


def build_variant(width: float = 1.0) -> DigitsCNN:
    """The same CNN with its channel counts scaled by ``width`` (for hyperparameter search)."""
    return DigitsCNN(width=width)


def data() -> Splits:
    return digits_splits(8)


def example_inputs(batch: int) -> Inputs:
    """``batch`` real training images (repeated when ``batch`` exceeds the split)."""
    return take(data().train, batch)


SPEC = register_model(
    ModelSpec(
        name="digits_cnn",
        task=Task.CLASSIFICATION,
        build=build,
        data=data,
        example_inputs=example_inputs,
        quality=Accuracy(),
        recipe=TrainRecipe(epochs=12, lr=3e-3, batch_size=32, weight_decay=1e-4, seed=0),
        input_names=("pixels",),
        throughput_batch=64,
        description="3-layer CNN on 8x8 digits (~40k params)",
        tags=frozenset({"conv"}),
        input_kind=InputKind.IMAGE,
        declines={
            "early_stopping": "5 seeds x 2 arms x 60 epochs of the full split do not fit the main command's time "
                              "budget; cancer_mlp shows the technique",
            "gradient_clipping": "4 regimes x 5 seeds x 2 arms of the full split do not fit the main command's "
                                 "time budget; cancer_mlp shows the technique",
            "tuning": "2 studies x 8 trials x 3 seeds do not fit the main command's time budget; cancer_mlp "
                      "shows the technique",
        },
        search_space={"lr": ("log", 3e-4, 3e-2), "weight_decay": ("log", 1e-6, 1e-1),
                      "batch_size": ("choice", 16, 32, 64), "width": ("choice", 0.5, 1.0, 2.0)},
        build_variant=build_variant,
    )
)
