"""Students: the smaller architecture each zoo model declares for knowledge distillation.

A user's model declares its own the same way: ``register_student("my_model", build_small)``. A student must have at
most a quarter of its teacher's parameters (the distillation technique checks it on the real models).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from harness.errors import ConfigError
from harness.registry import Registry

STUDENTS: Registry[Callable[[], nn.Module]] = Registry("student")


def register_student(model: str, build: Callable[[], nn.Module]) -> Callable[[], nn.Module]:
    """Declare ``build`` as the student architecture of the zoo model ``model``; one per model."""
    return STUDENTS.add(model, build)


def student_of(model: str) -> Callable[[], nn.Module]:
    """The declared student of ``model``; a model without one is a ConfigError saying how to declare it."""
    if model not in STUDENTS:
        raise ConfigError(f"model {model!r} declares no student; declare one with "
                          f"model_zoo.students.register_student({model!r}, build)")
    return STUDENTS.get(model)


class SmallCNN(nn.Module):
    """Conv layers of the given widths, each 3×3 with stride ``stride`` and ReLU, global average pooling, a
    linear classifier: the student of the digits models."""

    def __init__(self, widths: tuple[int, ...], stride: int, num_classes: int = 10) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 1
        for c_out in widths:
            layers += [nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1), nn.ReLU()]
            c_in = c_out
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.classifier = nn.Linear(c_in, num_classes)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(pixels))


def digits_resnet_student() -> nn.Module:
    """Four stride-2 convs (16 → 128 channels) on the 32×32 digits: about 8 % of the ResNet's parameters."""
    return SmallCNN((16, 32, 64, 128), stride=2)


class NarrowDigitsCNN(nn.Module):
    """The digits CNN's layout (three convs, two max-pools, a two-layer head) at half its widths and a quarter of
    its head: about a fifth of its parameters."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(32 * 2 * 2, 16), nn.ReLU(), nn.Linear(16, num_classes))

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(pixels))


def digits_cnn_student() -> nn.Module:
    return NarrowDigitsCNN()


def cancer_mlp_student() -> nn.Module:
    """30 → 16 → 2: about an eighth of the MLP's parameters."""
    return nn.Sequential(nn.Linear(30, 16), nn.ReLU(), nn.Linear(16, 2))


register_student("digits_resnet", digits_resnet_student)
register_student("digits_cnn", digits_cnn_student)
register_student("cancer_mlp", cancer_mlp_student)
