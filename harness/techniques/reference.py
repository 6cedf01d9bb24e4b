"""The fp32 reference as a technique: the baseline every optimized case is compared with, run on every backend."""

from __future__ import annotations

import dataclasses

from harness.artifact import Artifact, ArtifactKind, Precision
from harness.techniques.base import Context, Reference, TechniqueConfig, register_technique


@dataclasses.dataclass(frozen=True)
class Fp32Config(TechniqueConfig):
    """No change: the reference module in fp32. Its quality contract holds trivially (retention 1)."""

    technique = "reference"

    @property
    def output_kind(self) -> ArtifactKind:
        return ArtifactKind.TORCH_MODULE

    @property
    def precision(self) -> Precision:
        return Precision.FP32


@register_technique(Fp32Config)
def reference_artifact(reference: Reference, config: Fp32Config, ctx: Context) -> Artifact:
    """The reference module itself (not a copy): backends must not modify what they are given."""
    return Artifact(ArtifactKind.TORCH_MODULE, Precision.FP32, key=reference.key, module=reference.module)


REFERENCE = Fp32Config(name="fp32")
