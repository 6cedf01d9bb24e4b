"""Toy models and artifacts for the backend tests: small enough that every backend runs them in milliseconds."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from harness.artifact import Artifact, ArtifactKind, Precision
from harness.cache import Cache
from harness.context import Context
from tests.toy_models import MLP, TinyEmbedder


def TinyMLP() -> MLP:
    return MLP(8, 32, 4)


class TinyCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2))
        self.head = nn.Linear(8 * 4 * 4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.flatten(self.conv(x), 1))


def _seeded(cls: type[nn.Module]) -> nn.Module:
    torch.manual_seed(0)
    return cls().eval()


TOYS = {
    "mlp": (TinyMLP, lambda b: (torch.randn(b, 8, generator=torch.Generator().manual_seed(b)),), ("x",)),
    "cnn": (TinyCNN, lambda b: (torch.randn(b, 1, 8, 8, generator=torch.Generator().manual_seed(b)),), ("x",)),
    "embedder": (
        TinyEmbedder,
        lambda b: (torch.randint(0, 50, (b, 6), generator=torch.Generator().manual_seed(b)),
                   torch.ones(b, 6, dtype=torch.int64)),
        ("ids", "mask"),
    ),
}


class Toy:
    """A toy model with its example inputs and input names, as a backend sees them."""

    def __init__(self, name: str) -> None:
        cls, self.inputs, self.input_names = TOYS[name]
        self.name = name
        self.module = _seeded(cls)

    def artifact(self, precision: Precision = Precision.FP32, module: nn.Module | None = None) -> Artifact:
        module = module if module is not None else self.module
        kind = ArtifactKind.TORCH_QUANTIZED if precision is Precision.INT8 else ArtifactKind.TORCH_MODULE
        return Artifact(kind, precision, key=f"toy-{self.name}-{precision.value}", module=module)

    def expected(self, batch: int) -> np.ndarray:
        with torch.no_grad():
            return self.module(*self.inputs(batch)).numpy()


@pytest.fixture(params=["mlp", "cnn"])
def toy(request: pytest.FixtureRequest) -> Toy:
    return Toy(request.param)


@pytest.fixture
def make_toy():
    return Toy


@pytest.fixture(scope="module")
def module_cache(tmp_path_factory: pytest.TempPathFactory) -> Cache:
    """One cache per test module, so a toy model is exported once per module rather than once per test."""
    return Cache(tmp_path_factory.mktemp("cache"))


@pytest.fixture
def bctx(module_cache: Cache) -> Context:
    return Context(cache=module_cache, threads=1)
