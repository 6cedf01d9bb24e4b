"""Technique configs, their registry and the one verb ``apply(reference, config, ctx)``."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

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
class ReportFigure:
    """One figure the report shows in a technique's row: a metric key of the case's record, its label, and a
    ``str.format`` template for the value (``ReportFigure("training.epochs_saved", "epochs saved", "{:.0%}")``)."""

    key: str
    label: str
    format: str = "{:.4g}"

    def to_dict(self) -> dict[str, str]:
        return {"key": self.key, "label": self.label, "format": self.format}


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
    # What the report shows for the technique's cases (run records carry it, the report reads no code): the
    # section that draws them (harness/report/sections), the figures in each case's row, and the section's
    # optional pictures ("grad_norm" in the training section).
    report_section: ClassVar[str] = "generic"
    report_figures: ClassVar[tuple[ReportFigure, ...]] = ()
    report_plots: ClassVar[tuple[str, ...]] = ()
    # A technique too heavy for the main command (fine-tuning a pretrained transformer): its cases are made only
    # under ``pytest -m large`` or when ``--optbench-configs`` names the preset, and carry the ``large`` mark.
    large: ClassVar[bool] = False

    def validate(self) -> None:
        require_range("min_quality_retention", self.min_quality_retention, 0.0, 1.0)

    def is_large(self) -> bool:
        """Whether this config's cases belong to the large job (the class's ``large``)."""
        return self.large

    @classmethod
    def report_declaration(cls) -> dict[str, Any]:
        """The report declaration as the run record carries it."""
        return {"section": cls.report_section, "figures": [f.to_dict() for f in cls.report_figures],
                "plots": list(cls.report_plots)}

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
                            decision="interval", unit="test items", across_weights=True)]


C = TypeVar("C", bound=TechniqueConfig)
ApplyFn = Callable[[Reference, C, Context], Artifact]


@dataclasses.dataclass(frozen=True)
class Technique:
    """A registered technique: its config type and the function that applies it."""

    config: type[TechniqueConfig]
    apply: Callable[[Reference, Any, Context], Artifact]


TECHNIQUES: Registry[Technique] = Registry("technique config")  # by config class name
PRESETS: dict[str, Registry[TechniqueConfig]] = {}


def check_declaration(config_cls: type[TechniqueConfig]) -> None:
    """Refuse a config class whose report declaration the report could not draw, naming the bad entry."""
    where = f"{config_cls.__name__}.report"
    if not isinstance(config_cls.report_section, str) or not config_cls.report_section:
        raise RegistryError(f"{where}_section must be a section name such as 'generic' or 'training', "
                            f"got {config_cls.report_section!r}")
    for i, fig in enumerate(config_cls.report_figures):
        if not isinstance(fig, ReportFigure):
            raise RegistryError(f"{where}_figures[{i}] must be a ReportFigure(key, label, format), got {fig!r}")
        if not fig.key or not isinstance(fig.key, str) or any(c.isspace() for c in fig.key):
            raise RegistryError(f"{where}_figures[{i}]: key must be a metric key such as 'training.epochs_saved', "
                                f"got {fig.key!r}")
        try:
            fig.format.format(0.5)
        except (ValueError, IndexError, KeyError, AttributeError) as exc:
            raise RegistryError(f"{where}_figures[{i}]: format {fig.format!r} cannot format a number ({exc}); "
                                "expected a str.format template such as '{:.0%}'") from None
    bad = [p for p in config_cls.report_plots if not isinstance(p, str) or not p]
    if bad or isinstance(config_cls.report_plots, str):
        raise RegistryError(f"{where}_plots must be a tuple of picture names such as ('grad_norm',), "
                            f"got {config_cls.report_plots!r}")


def register_technique(config_cls: type[C]) -> Callable[[ApplyFn[C]], ApplyFn[C]]:
    """Register ``fn`` as the implementation of ``config_cls``: the one registration a technique needs (its module
    in harness/techniques/ is imported by the package; a module elsewhere, from a conftest.py or entry point)."""
    if not (isinstance(config_cls, type) and issubclass(config_cls, TechniqueConfig)):
        raise RegistryError(f"register_technique takes a TechniqueConfig subclass, got {config_cls!r}")
    check_declaration(config_cls)

    def deco(fn: ApplyFn[C]) -> ApplyFn[C]:
        TECHNIQUES.add(config_cls.__name__, Technique(config_cls, fn))
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
    name = type(config).__name__
    technique = TECHNIQUES.get(name) if name in TECHNIQUES else None
    if technique is None or technique.config is not type(config):
        raise RegistryError(f"no technique registered for {name}; expected one of: {', '.join(TECHNIQUES.names())}")
    return technique.apply(reference, config, ctx)
