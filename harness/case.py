"""Cases: the (model, technique config, backend) cells of a suite's matrix, and how they are generated."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from harness.backends.base import BACKENDS, Backend
from harness.techniques.base import TechniqueConfig, presets
from harness.techniques.reference import REFERENCE
from model_zoo.spec import MODELS


@dataclasses.dataclass(frozen=True)
class Case:
    suite: str
    model: str
    config: TechniqueConfig
    backend: str
    skip_reason: str | None = None  # set when the backend cannot run on this machine

    @property
    def id(self) -> str:
        return f"{self.model}-{self.config.name}-{self.backend}"

    @property
    def key(self) -> tuple[str, str]:
        """Unique within a run: suites share model, backend and the fp32 reference's config name."""
        return (self.suite, self.id)

    @property
    def reference_key(self) -> tuple[str, str]:
        return (self.suite, self.reference_id)

    @property
    def is_reference(self) -> bool:
        return self.config.name == REFERENCE.name

    @property
    def reference_id(self) -> str:
        return f"{self.model}-{REFERENCE.name}-{self.backend}"


def _emulated(backend: type[Backend], config: TechniqueConfig, selected: Sequence[str] | None) -> str | None:
    """The backend's reason to skip a precision it would only emulate here, unless the config was asked for."""
    if selected and config.name in selected:
        return None
    return backend.emulated(config.precision)


def generate_cases(
    suite: str,
    models: Sequence[str] | None = None,
    configs: Sequence[str] | None = None,
    backends: Sequence[str] | None = None,
) -> list[Case]:
    """Every case of ``suite``: models × (fp32 reference + the suite's presets) × backends.

    A backend that cannot take a config's artifact (an ORT-quantized graph on torch eager) or a config that
    does not apply to a model yields no case at all; a backend unavailable here yields cases skipped with the
    backend's reason, and so does a precision the backend would only emulate here (bf16 on a CPU without bf16
    instructions) unless ``configs`` names it. The fp32 reference of each (model, backend) comes first, so
    speedups are side by side; it is kept even when ``configs`` filters it out, since every other case needs it, and
    left out where the suite has no case on that backend (training techniques run on torch eager only).
    """
    suite_presets = presets(suite)
    chosen = [suite_presets.get(name) for name in configs] if configs else [c for _, c in suite_presets.items()]
    chosen = [c for c in chosen if c.name != REFERENCE.name]
    model_names = list(models) if models else MODELS.names()
    backend_names = list(backends) if backends else BACKENDS.names()
    cases: list[Case] = []
    for model_name in model_names:
        spec = MODELS.get(model_name)
        for backend_name in backend_names:
            backend = BACKENDS.get(backend_name)
            availability = backend.availability()
            skip = None if availability.ok else f"{backend_name} unavailable: {availability.reason}"
            cells = [
                Case(suite, model_name, cfg, backend_name, skip or _emulated(backend, cfg, configs))
                for cfg in chosen
                if backend.supports(cfg) and cfg.runs_on(backend_name) and cfg.not_applicable(spec) is None
            ]
            if cells:
                cases.append(Case(suite, model_name, REFERENCE, backend_name, skip))
                cases.extend(cells)
    return cases
