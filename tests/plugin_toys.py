"""Tiny models, a toy technique and a toy suite for the plugin's pytester tests.

They are registered only for the duration of a test (``registered()``), so a run that collects both tests/ and
suites/ never sees them in the real suites.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import os
import time
from collections.abc import Iterator

import torch
from torch import nn

from harness.artifact import Artifact, ArtifactKind
from harness.cache import make_key
from harness.gate import Expectation
from harness.metrics.quality import Accuracy
from harness.techniques import base as tbase
from harness.techniques.base import Context, Reference, TechniqueConfig
from model_zoo.spec import MODELS, ModelSpec, Splits, Task, TrainRecipe
from tests.toy_models import MLP, labelled_splits


def _data() -> Splits:
    return labelled_splits(96, 32, 32)


def _examples(batch: int) -> tuple[torch.Tensor, ...]:
    return (torch.randn(batch, 4, generator=torch.Generator().manual_seed(batch)),)


class ToyMLP(MLP):
    def __init__(self) -> None:
        super().__init__(4, 16, 2)


class NaNMLP(ToyMLP):
    """Trains normally; in eval mode its outputs are NaN, like a model an optimization broke."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net(x)
        return out if self.training else out * float("nan")


class CrashingMLP(ToyMLP):
    """Trains normally; in eval mode it raises an error no optbench code anticipates (a bug, a library failure)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            raise RuntimeError("kernel exploded\nsecond line of detail")
        return self.net(x)


class EighMLP(ToyMLP):
    """Runs in eager mode, but calls an op (a symmetric eigen-solve) that has no ONNX translation."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x) + 0.0 * torch.linalg.eigvalsh(x.T @ x).sum()


def _spec(name: str, build: type[nn.Module]) -> ModelSpec:
    return ModelSpec(
        name=name,
        task=Task.CLASSIFICATION,
        build=build,
        data=_data,
        example_inputs=_examples,
        quality=Accuracy(),
        recipe=TrainRecipe(epochs=30, lr=0.05, batch_size=32),
        input_names=("x",),
        throughput_batch=16,
        calibration_size=16,
    )


@dataclasses.dataclass(frozen=True)
class NoisyConfig(TechniqueConfig):
    """Adds seeded Gaussian noise to every weight: a technique that really costs accuracy."""

    scale: float = 0.0
    technique = "toy"

    @property
    def output_kind(self) -> ArtifactKind:
        return ArtifactKind.TORCH_MODULE

    def expectations(self) -> list[Expectation]:
        return [*super().expectations(), Expectation("noise_applied", "proof.noised_tensors", ">=", 1.0)]


SLOW_ENV = "OPTBENCH_TOY_SLOW_S"  # set to seconds: every toy artifact sleeps that long per call (a "slower" change)
POISON_ENV = "OPTBENCH_TOY_POISON"  # "nan" or "inf": the toy artifact (never the fp32 reference) emits that
PROOF_ENV = "OPTBENCH_TOY_PROOF_KEY"  # rename the toy's proof figure (default "noised_tensors")


class Sleepy(nn.Module):
    def __init__(self, inner: nn.Module, delay_s: float) -> None:
        super().__init__()
        self.inner, self.delay_s = inner, delay_s

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        time.sleep(self.delay_s)
        return self.inner(x)


class Poisoned(nn.Module):
    """An optimized model gone wrong while fp32 is fine: its outputs are NaN (an overflowed half-precision
    accumulator) or Inf (a saturated dequantization scale)."""

    def __init__(self, inner: nn.Module, kind: str) -> None:
        super().__init__()
        self.inner, self.value = inner, float(kind)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x) + self.value


def apply_noisy(ref: Reference, config: NoisyConfig, ctx: Context) -> Artifact:
    module: nn.Module = copy.deepcopy(ref.module)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn(p.shape, generator=g) * config.scale)
    if os.environ.get(SLOW_ENV):
        module = Sleepy(module, float(os.environ[SLOW_ENV]))
    if os.environ.get(POISON_ENV):
        module = Poisoned(module, os.environ[POISON_ENV])
    proof = {os.environ.get(PROOF_ENV, "noised_tensors"): float(len(list(module.parameters())))}
    return Artifact(ArtifactKind.TORCH_MODULE, config.precision, make_key(ref.key, config.to_dict()), module=module,
                    proof=proof)


SPECS = [_spec("toy_mlp", ToyMLP), _spec("toy_nan", NaNMLP), _spec("toy_unexportable", EighMLP),
         _spec("toy_crashing", CrashingMLP)]
PRESETS = [NoisyConfig(name="gentle", scale=0.0), NoisyConfig(name="harsh", scale=3.0)]


@contextlib.contextmanager
def registered() -> Iterator[None]:
    """Register the toys for the length of a test, then remove every trace of them."""
    for spec in SPECS:
        MODELS.add(spec.name, spec)
    tbase.register_technique(NoisyConfig)(apply_noisy)
    for cfg in PRESETS:
        tbase.register_preset("toy", cfg)
    try:
        yield
    finally:
        for spec in SPECS:
            MODELS.remove(spec.name)
        tbase.TECHNIQUES.remove(NoisyConfig.__name__)
        tbase.PRESETS.pop("toy", None)
