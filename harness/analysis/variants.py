"""The analysis suites' configs: each wraps one preset another suite already makes (a quantized, pruned or
distilled variant, or a training technique's run) and names it ``suite/preset``.

An analysis case keeps its source's case id (``cancer_mlp-torch_dynamic_int8-torch_eager``), applies the source's
own technique through the cache (``apply`` on the wrapped config: nothing is made twice), and declares its own
contract. Interpretability and drift read outputs only, so they run each variant once, on the backend its artifact
is native to (torch eager for modules, ONNX Runtime for graphs); cost follows the source onto every backend,
since what it prices is the throughput each backend measured.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, ClassVar

from harness.artifact import Artifact, ArtifactKind, Precision
from harness.case import declined
from harness.context import Context
from harness.errors import ConfigError, RegistryError
from harness.techniques.base import (
    PRESETS,
    TECHNIQUES,
    TechniqueConfig,
    apply,
    presets,
    register_preset,
    register_technique,
)
from model_zoo.reference import Reference

if TYPE_CHECKING:
    from model_zoo.spec import ModelSpec
    from model_zoo.traits import Traits

NATIVE_BACKEND = {ArtifactKind.TORCH_MODULE: "torch_eager", ArtifactKind.TORCH_QUANTIZED: "torch_eager",
                  ArtifactKind.ONNX_MODEL: "onnxruntime"}


@dataclasses.dataclass(frozen=True)
class AnalysisConfig(TechniqueConfig):
    """One source variant, named ``suite/preset``; no quality-retention contract of its own (its source suite
    judges that)."""

    source: str = ""
    min_quality_retention: float = 0.0
    native_only: ClassVar[bool] = True

    def validate(self) -> None:
        suite, _, preset = self.source.partition("/")
        if not suite or not preset:
            raise ConfigError(f"`source` must name a preset as suite/preset (e.g. quantization/torch_dynamic_int8), "
                              f"got {self.source!r}")
        try:
            presets(suite).get(preset)
        except RegistryError as exc:
            raise ConfigError(f"`source` {self.source!r}: {exc}") from None

    @property
    def source_suite(self) -> str:
        return self.source.partition("/")[0]

    @property
    def variant(self) -> TechniqueConfig:
        suite, _, preset = self.source.partition("/")
        return presets(suite).get(preset)

    @property
    def output_kind(self) -> ArtifactKind:
        return self.variant.output_kind

    @property
    def precision(self) -> Precision:
        return self.variant.precision

    def is_large(self) -> bool:
        """An analysis of a large variant is large: it would build that variant."""
        return self.variant.is_large()

    def runs_on(self, backend: str) -> bool:
        native = NATIVE_BACKEND.get(self.output_kind) == backend
        return self.variant.runs_on(backend) and (native or not self.native_only)

    def requirements(self) -> tuple[str, ...]:
        return self.requires

    def not_applicable(self, spec: ModelSpec, traits: Traits) -> str | None:
        """Its own traits, then its source's: a variant the source suite makes no case of makes none here."""
        return (traits.missing(self.requirements()) or declined(spec, self.source_suite, self.variant)
                or self.variant.not_applicable(spec, traits))


def apply_source(reference: Reference, config: AnalysisConfig, ctx: Context) -> Artifact:
    """The source variant's artifact, through its own technique and the cache."""
    return apply(reference, config.variant, ctx)


def wrap(suite: str, config_cls: type[AnalysisConfig], sources: tuple[str, ...]) -> None:
    """Register one ``suite`` preset per source (named as the source preset); sources not registered in this
    process are left out, and a suite registered already is left as it is."""
    if config_cls.__name__ not in TECHNIQUES:
        register_technique(config_cls)(apply_source)
    if suite in PRESETS:
        return
    for source in sources:
        src_suite, _, name = source.partition("/")
        if src_suite in PRESETS and name in PRESETS[src_suite]:
            register_preset(suite, config_cls(name=name, source=source))
