"""Tiny references (MLP, CNN, token embedder) wrapped as the zoo would hand them to a technique."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch
from torch import nn

from harness.cache import Cache
from harness.metrics.quality import Accuracy, EmbeddingFidelity
from harness.techniques.base import Context, Reference
from model_zoo.spec import Inputs, ModelSpec, Split, Splits, Task, TrainRecipe
from tests.toy_models import MLP, TinyEmbedder, labelled_splits


def TinyMLP() -> MLP:
    return MLP(16, 64, 64, 4)


class TinyCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 16, 3, padding=1),
                                  nn.ReLU(), nn.AdaptiveAvgPool2d(1))
        self.head = nn.Linear(16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.flatten(self.conv(x), 1))


class TinyDepthwiseCNN(nn.Module):
    """A MobileNet-style block: a dense conv, a depthwise conv (one filter per channel) and a 1x1 projection."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1, groups=8),
                                  nn.ReLU(), nn.Conv2d(8, 16, 1), nn.AdaptiveAvgPool2d(1))
        self.head = nn.Linear(16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.flatten(self.conv(x), 1))


def _float_inputs(shape: tuple[int, ...]) -> Callable[[int], Inputs]:
    return lambda n: (torch.randn(n, *shape, generator=torch.Generator().manual_seed(n)),)


def _token_inputs(n: int) -> Inputs:
    g = torch.Generator().manual_seed(n)
    return torch.randint(0, 50, (n, 6), generator=g), torch.ones(n, 6, dtype=torch.int64)


TOYS = {  # name: (module class, inputs(n), input names, tags)
    "mlp": (TinyMLP, _float_inputs((16,)), ("x",), frozenset()),
    "cnn": (TinyCNN, _float_inputs((1, 8, 8)), ("x",), frozenset({"conv"})),
    "dwcnn": (TinyDepthwiseCNN, _float_inputs((1, 8, 8)), ("x",), frozenset({"conv"})),
    "embedder": (TinyEmbedder, _token_inputs, ("ids", "mask"), frozenset()),
}


def build_reference(name: str, test_split: Split | None = None) -> Reference:
    """A seeded toy as a Reference: 64 training, 16 validation and 32 test items of random inputs."""
    cls, inputs, input_names, tags = TOYS[name]
    torch.manual_seed(0)
    module = cls().eval()

    def split(items: Inputs) -> Split:
        return Split(items, np.zeros(len(items[0]), dtype=np.int64))

    data = inputs(112)
    splits = Splits(split(tuple(t[:64] for t in data)), split(tuple(t[64:80] for t in data)),
                    split(tuple(t[80:] for t in data)) if test_split is None else test_split)
    quality = EmbeddingFidelity() if name == "embedder" else Accuracy()
    spec = ModelSpec(name=f"toy_{name}", task=Task.CLASSIFICATION, build=cls, data=lambda: splits,
                     example_inputs=inputs, quality=quality, recipe=None, input_names=input_names,
                     calibration_size=32, tags=tags)
    return Reference(spec=spec, module=module, key=f"toy-{name}-v1", splits=splits)


@pytest.fixture
def make_reference() -> Callable[..., Reference]:
    """``make_reference(name, test_split=None)`` builds the toy called ``name`` as a Reference."""
    return build_reference


@pytest.fixture(scope="module")
def tctx(tmp_path_factory: pytest.TempPathFactory) -> Context:
    """One cache per test module: a toy is exported once and each config quantizes it once."""
    return Context(cache=Cache(tmp_path_factory.mktemp("cache")), threads=1)


def _labelled_data() -> Splits:
    return labelled_splits(120, 40, 40)


def trainable_reference(recipe: TrainRecipe | None = None) -> Reference:
    """A learnable toy (4 features, 2 classes) with a training recipe, as training techniques need."""
    splits = _labelled_data()
    spec = ModelSpec(name="toy_trainable", task=Task.CLASSIFICATION, build=lambda: MLP(4, 16, 2),
                     data=lambda: splits, example_inputs=lambda n: (torch.randn(n, 4),), quality=Accuracy(),
                     recipe=recipe or TrainRecipe(epochs=6, lr=0.05, batch_size=16), input_names=("x",))
    torch.manual_seed(0)
    return Reference(spec=spec, module=MLP(4, 16, 2).eval(), key="toy-trainable-v1", splits=splits)


@pytest.fixture
def ctx(tmp_path):
    """A fresh run's context on a cache of its own (its own memo stores)."""
    return Context(Cache(tmp_path), 1)
