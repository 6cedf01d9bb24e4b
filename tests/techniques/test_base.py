"""The one technique registry: one registration per config type, its report declaration checked on the way in, and
every module of the package imported without a list kept by hand."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import ClassVar

import pytest

import harness.techniques
from harness.analysis.cost import CostConfig
from harness.analysis.drift_case import DriftConfig
from harness.analysis.interpretability_case import InterpretabilityConfig
from harness.artifact import ArtifactKind
from harness.errors import RegistryError
from harness.techniques.base import TECHNIQUES, ReportFigure, Technique, TechniqueConfig, apply, register_technique
from tests.report import records


@dataclasses.dataclass(frozen=True)
class Declared(TechniqueConfig):
    technique: ClassVar[str] = "declared"
    report_figures: ClassVar[tuple[ReportFigure, ...]] = (ReportFigure("proof.x", "x", "{:.0%}"),)

    @property
    def output_kind(self) -> ArtifactKind:
        return ArtifactKind.TORCH_MODULE


def _apply(reference, config, ctx):
    return ("applied", config.name)


@pytest.fixture
def registered():
    """Register a config class for one test, then remove it."""
    added: list[str] = []

    def register(cls, fn=_apply):
        register_technique(cls)(fn)
        added.append(cls.__name__)
        return cls

    yield register
    for name in added:
        TECHNIQUES.remove(name)


def test_one_registration_gives_the_config_its_apply_in_one_registry(registered):
    registered(Declared)
    assert TECHNIQUES.get("Declared") == Technique(Declared, _apply)
    assert apply(None, Declared(name="d"), None) == ("applied", "d")  # type: ignore[arg-type]


def test_a_second_registration_of_a_config_is_refused(registered):
    registered(Declared)
    with pytest.raises(RegistryError, match="'Declared' is already registered"):
        register_technique(Declared)(_apply)


def test_apply_refuses_an_unregistered_config_naming_it():
    with pytest.raises(RegistryError, match=r"no technique registered for Declared; expected one of: .*PruningConfig"):
        apply(None, Declared(name="d"), None)  # type: ignore[arg-type]


def test_apply_refuses_a_config_of_another_class_under_a_registered_name(registered):
    registered(Declared)
    impostor = type("Declared", (Declared,), {"__module__": "elsewhere"})
    with pytest.raises(RegistryError, match="no technique registered for Declared"):
        apply(None, impostor(name="d"), None)  # type: ignore[arg-type]


def test_register_technique_takes_only_a_config_class():
    with pytest.raises(RegistryError, match="takes a TechniqueConfig subclass, got <class 'int'>"):
        register_technique(int)  # type: ignore[type-var]


def _bad(**declaration) -> type[TechniqueConfig]:
    return type("Bad", (Declared,), declaration)


@pytest.mark.parametrize(("declaration", "message"), [
    ({"report_section": ""}, r"^Bad.report_section must be a section name such as 'generic' or 'training', got ''$"),
    ({"report_figures": (("proof.x", "x", "{:.0%}"),)},
     r"^Bad.report_figures\[0\] must be a ReportFigure\(key, label, format\), got \('proof.x', 'x', '\{:.0%\}'\)$"),
    ({"report_figures": (ReportFigure("proof x", "x"),)},
     r"^Bad.report_figures\[0\]: key must be a metric key such as 'training.epochs_saved', got 'proof x'$"),
    ({"report_figures": (ReportFigure("proof.x", "x", "{:.0q}"),)},
     r"^Bad.report_figures\[0\]: format '\{:.0q\}' cannot format a number \(.*\); expected a str.format template"),
    ({"report_figures": (ReportFigure("proof.x", "x", "{0} of {1}"),)},
     r"^Bad.report_figures\[0\]: format '\{0\} of \{1\}' cannot format a number"),
    ({"report_plots": "grad_norm"}, r"^Bad.report_plots must be a tuple of picture names such as \('grad_norm',\), "
                                    r"got 'grad_norm'$"),
])
def test_a_report_declaration_the_report_cannot_draw_is_refused_with_one_line(declaration, message):
    with pytest.raises(RegistryError, match=message) as info:
        register_technique(_bad(**declaration))
    assert "\n" not in str(info.value)
    assert "Bad" not in TECHNIQUES


def test_the_declaration_is_what_the_run_record_carries():
    assert Declared.report_declaration() == {"section": "generic", "plots": [],
                                             "figures": [{"key": "proof.x", "label": "x", "format": "{:.0%}"}]}


def test_every_public_module_of_the_package_is_imported_without_a_list():
    package = Path(harness.techniques.__file__).parent
    expected = sorted(f"harness.techniques.{p.stem}" for p in package.glob("*.py")
                      if not p.stem.startswith("_"))
    assert sorted(harness.techniques.MODULES) == expected


def test_the_report_tests_records_declare_what_the_techniques_declare():
    """tests/report/records.py hand-makes run records; their ``report`` must be the config classes' own."""
    configs = [t.config for _, t in TECHNIQUES.items()] + [CostConfig, DriftConfig, InterpretabilityConfig]
    by_technique: dict[str, list[dict]] = {}
    for cls in configs:
        by_technique.setdefault(cls.technique, []).append(cls.report_declaration())
    for technique, declared in records.DECLARED.items():
        assert by_technique.get(technique), f"no config declares technique {technique!r}"
        assert all(d == declared for d in by_technique[technique]), technique
