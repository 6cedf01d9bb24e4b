"""Technique configs, their registry and the one verb ``apply(reference, config, ctx)``."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar, TypeVar

from harness.artifact import Artifact, ArtifactKind, Precision
from harness.config import Config, require_range
from harness.context import Context
from harness.core import Expectation
from harness.errors import RegistryError
from harness.registry import Registry
from model_zoo.reference import Reference

if TYPE_CHECKING:

    from model_zoo.spec import ModelSpec
    from model_zoo.traits import Traits


@dataclasses.dataclass(frozen=True)
class TechniqueConfig(Config):
    """Base of every technique config.

    ``min_quality_retention`` is the technique's own quality contract: the share of the reference's quality
    it promises to keep (accuracy ratio; mean cosine to the reference for embeddings).
    """

    min_quality_retention: float = 0.99
    technique: ClassVar[str] = "base"
    # The model traits (model_zoo.traits) the technique needs; a model without one gets no case, and the run's
    # header says why once per suite and model.
    requires: ClassVar[tuple[str, ...]] = ()

    def validate(self) -> None:
        require_range("min_quality_retention", self.min_quality_retention, 0.0, 1.0)

    @property
    def output_kind(self) -> ArtifactKind:
        raise NotImplementedError

    @property
    def precision(self) -> Precision:
        return Precision.FP32

    def runs_on(self, backend: str) -> bool:
        """Whether this config's cases exist on ``backend`` at all (beyond the artifact kinds it accepts)."""
        return True

    def requirements(self) -> tuple[str, ...]:
        """The traits this config needs (the class's ``requires``; a config may add to them from its settings)."""
        return self.requires

    def not_applicable(self, spec: ModelSpec, traits: Traits) -> str | None:
        """Why this config makes no sense for ``spec`` (no such case is generated), or None: by traits, never
        by the model's name."""
        return traits.missing(self.requirements())

    def expectations(self) -> list[Expectation]:
        """The technique's contract, checked on every case it makes. Retention is judged on its interval over the
        test items: kept, lost, or inconclusive."""
        if self.min_quality_retention <= 0:  # a sweep point describes; it promises no quality
            return []
        return [Expectation("quality_retention", "quality.retention", ">=", self.min_quality_retention,
                            decision="interval", unit="test items")]


C = TypeVar("C", bound=TechniqueConfig)
ApplyFn = Callable[[Reference, C, Context], Artifact]

TECHNIQUES: Registry[type[TechniqueConfig]] = Registry("technique config")
_APPLY: dict[type[TechniqueConfig], Callable[[Reference, TechniqueConfig, Context], Artifact]] = {}
PRESETS: dict[str, Registry[TechniqueConfig]] = {}


def register_technique(config_cls: type[C]) -> Callable[[ApplyFn[C]], ApplyFn[C]]:
    """Register ``fn`` as the implementation of ``config_cls``; one implementation per config type."""

    def deco(fn: ApplyFn[C]) -> ApplyFn[C]:
        TECHNIQUES.add(config_cls.__name__, config_cls)
        _APPLY[config_cls] = fn  # type: ignore[assignment]
        return fn

    return deco


def register_preset(suite: str, config: TechniqueConfig) -> TechniqueConfig:
    """Add a named config to a suite's matrix; names are unique within a suite."""
    return PRESETS.setdefault(suite, Registry(f"{suite} preset")).add(config.name, config)


def presets(suite: str) -> Registry[TechniqueConfig]:
    if suite not in PRESETS:
        raise RegistryError(f"unknown suite {suite!r}; expected one of: {', '.join(sorted(PRESETS))}")
    return PRESETS[suite]


def apply(reference: Reference, config: TechniqueConfig, ctx: Context) -> Artifact:
    """Apply the technique registered for ``type(config)`` to ``reference``."""
    fn = _APPLY.get(type(config))
    if fn is None:
        raise RegistryError(
            f"no technique registered for {type(config).__name__}; expected one of: {', '.join(TECHNIQUES.names())}"
        )
    return fn(reference, config, ctx)
