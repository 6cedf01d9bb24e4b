"""digits_resnet: a residual CNN of about 1.2 M parameters on the digits upsampled to 32×32.

Large enough that int8 quantization and channel pruning change its latency measurably, yet small enough to train
in well under a minute on a laptop CPU. Only Conv/BatchNorm/ReLU/Add/pooling/Linear, so it exports to ONNX and
quantizes with ONNX Runtime without special cases.
"""

from __future__ import annotations

import itertools

import torch
from torch import nn

from harness.metrics.quality import Accuracy
from model_zoo.datasets import digits_splits, take
from model_zoo.spec import InputKind, Inputs, ModelSpec, Splits, Task, TrainRecipe, register_model

IMAGE_SIZE = 32
NUM_CLASSES = 10
WIDTHS = (16, 32, 64, 128, 256)  # stem, then one downsampling residual block per stage: 32 -> 16 -> 8 -> 4 -> 2


class BasicBlock(nn.Module):
    """Two 3×3 conv+BN layers with a residual connection (1×1 conv+BN shortcut when the shape changes)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU()
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False), nn.BatchNorm2d(out_channels)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class DigitsResNet(nn.Module):
    """A conv stem and four stride-2 residual blocks, global average pooling, one linear classifier."""

    def __init__(self, widths: tuple[int, ...] = WIDTHS, num_classes: int = NUM_CLASSES) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(1, widths[0], 3, padding=1, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU()
        )
        self.stages = nn.Sequential(*(BasicBlock(c_in, c_out, stride=2) for c_in, c_out in itertools.pairwise(widths)))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(widths[-1], num_classes)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """Logits (B, 10) for images (B, 1, 32, 32) in [0, 1]."""
        x = self.pool(self.stages(self.stem(pixels)))
        return self.fc(torch.flatten(x, 1))


def build() -> DigitsResNet:
    return DigitsResNet()


def data() -> Splits:
    return digits_splits(IMAGE_SIZE)


def example_inputs(batch: int) -> Inputs:
    """``batch`` real training images at 32×32 (repeated when ``batch`` exceeds the split)."""
    return take(data().train, batch)


SPEC = register_model(
    ModelSpec(
        name="digits_resnet",
        task=Task.CLASSIFICATION,
        build=build,
        data=data,
        example_inputs=example_inputs,
        quality=Accuracy(),
        recipe=TrainRecipe(epochs=8, lr=2e-3, batch_size=64, weight_decay=1e-4, seed=0),
        input_names=("pixels",),
        throughput_batch=64,
        description="residual CNN on digits upsampled to 32x32 (~1.2M params)",
        tags=frozenset({"conv"}),
        input_kind=InputKind.IMAGE,
        declines={
            "early_stopping": "training a 1.2M-parameter ResNet 5 seeds x 2 arms x 40 epochs does not fit the main "
                              "command's time budget",
            "gradient_clipping": "4 regimes x 5 seeds x 2 arms of ResNet training do not fit the main command's "
                                 "time budget",
            "augmentation": "digits_cnn shows augmentation on the same images at a fraction of the cost",
            "dataset_distillation": "matching through a ResNet embedder per seed does not fit the main command's "
                                    "time budget; digits_cnn shows the technique",
            "tuning": "2 studies x 8 trials x 3 seeds of ResNet training do not fit the main command's time budget",
        },
    )
)
