"""Tiny torch models shared by the tests: small enough that every backend and technique runs them in ms."""

from __future__ import annotations

import itertools

import torch
from torch import nn

from model_zoo.spec import Split, Splits


def labelled_splits(train: int, val: int, test: int, features: int = 4) -> Splits:
    """A learnable toy task in that order of rows: seeded Gaussian features, class ``x0 + 0.5·x1 > 0``."""
    x = torch.randn(train + val + test, features, generator=torch.Generator().manual_seed(0))
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).long().numpy()

    def split(a: int, b: int) -> Split:
        return Split((x[a:b],), y[a:b])

    return Splits(split(0, train), split(train, train + val), split(train + val, train + val + test))


class MLP(nn.Module):
    """Linear layers of the given widths with ReLU between them (``MLP(8, 32, 4)``: 8 → 32 → 4)."""

    def __init__(self, *widths: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for i, (n_in, n_out) in enumerate(itertools.pairwise(widths)):
            layers += [nn.ReLU()] if i else []
            layers.append(nn.Linear(n_in, n_out))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class TinyEmbedder(nn.Module):
    """Token ids and a mask in, one mean-pooled vector out: int64 inputs must reach the model as int64."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(50, 16)
        self.proj = nn.Linear(16, 8)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        m = mask.unsqueeze(-1).to(self.emb.weight.dtype)
        return self.proj((self.emb(ids) * m).sum(1) / m.sum(1).clamp(min=1))
