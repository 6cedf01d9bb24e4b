"""Cases: the (model, technique config, backend) cells of a suite's matrix, and how they are generated."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

from harness.backends.base import BACKENDS, Backend
from harness.techniques.base import TechniqueConfig, presets
from harness.techniques.reference import REFERENCE
from model_zoo.spec import MODELS, ModelSpec
from model_zoo.traits import Traits, traits_of

TraitsOf = Callable[[ModelSpec], Traits]


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

    @property
    def large(self) -> bool:
        """Whether the case belongs to the large job (``pytest -m large``): its model or its config is large."""
        return is_large(self.model) or self.config.is_large()


def _emulated(backend: type[Backend], config: TechniqueConfig, selected: Sequence[str] | None) -> str | None:
    """The backend's reason to skip a precision it would only emulate here, unless the config was asked for."""
    if selected and config.name in selected:
        return None
    return backend.emulated(config.precision)


def declined(spec: ModelSpec, suite: str, config: TechniqueConfig) -> str | None:
    """The reason ``spec`` gives for sitting out ``suite`` or this preset of it (``ModelSpec.declines``), or None."""
    reason = spec.declines.get(f"{suite}/{config.name}") or spec.declines.get(suite)
    return f"declined by the model: {reason}" if reason else None


def inapplicable(suite: str, spec: ModelSpec, config: TechniqueConfig, traits: TraitsOf) -> str | None:
    """Why ``config`` makes no case for ``spec`` in ``suite``: the model declines it or lacks a trait it needs."""
    return declined(spec, suite, config) or config.not_applicable(spec, traits(spec))


def chosen_presets(suite: str, configs: Sequence[str] | None, large: bool = False) -> list[TechniqueConfig]:
    """The suite's presets a run takes: those ``configs`` names, else every one but the large ones (unless
    ``large``); never the fp32 reference, which every model gets anyway."""
    suite_presets = presets(suite)
    if configs:
        chosen = [suite_presets.get(name) for name in configs if name in suite_presets]
    else:
        chosen = [c for _, c in suite_presets.items() if large or not c.is_large()]
    return [c for c in chosen if c.name != REFERENCE.name]


LARGE = "large"  # the tag (and pytest mark) of a model whose cases run in their own job: ``pytest -m large``


def is_large(model: str) -> bool:
    """Whether ``model`` is registered with the tag ``large``."""
    return model in MODELS and LARGE in MODELS.get(model).tags


def default_models(large: bool = False) -> list[str]:
    """The models a run takes when none is named: every registered one, the large ones only when ``large``."""
    return [name for name in MODELS.names() if large or not is_large(name)]


def not_applicable(suite: str, models: Sequence[str] | None = None, configs: Sequence[str] | None = None,
                   traits: TraitsOf = traits_of, large: bool = False) -> dict[str, dict[str, str]]:
    """Per model, the presets of ``suite`` that make no case for it and why (models with every preset applying
    are left out): what the run's header says once per suite and model."""
    out: dict[str, dict[str, str]] = {}
    for model_name in list(models) if models else default_models(large):
        spec = MODELS.get(model_name)
        chosen = chosen_presets(suite, configs, large)
        reasons = {c.name: r for c in chosen if (r := inapplicable(suite, spec, c, traits))}
        if reasons:
            out[model_name] = reasons
    return out


def summarize_reasons(suite: str, model: str, reasons: dict[str, str], total: int) -> str:
    """One line for a (suite, model): ``dataset_distillation: my_mlp not applicable (needs image inputs)``, or
    which presets do not apply and why when some do."""
    by_reason: dict[str, list[str]] = {}
    for name, reason in reasons.items():
        by_reason.setdefault(reason, []).append(name)
    if len(reasons) == total:
        return f"{suite}: {model} not applicable ({_common(list(by_reason))})"
    parts = "; ".join(f"{', '.join(names)}: {reason}" for reason, names in by_reason.items())
    return f"{suite}: {model}: {len(reasons)} of {total} presets not applicable ({parts})"


def _common(reasons: list[str]) -> str:
    """The traits every reason says are needed (``needs a training recipe``), else all the reasons."""
    if len(reasons) > 1 and all(r.startswith("needs ") for r in reasons):
        parts = [r.removeprefix("needs ").split(" and ") for r in reasons]
        shared = [p for p in parts[0] if all(p in other for other in parts[1:])]
        if shared:
            return "needs " + " and ".join(shared)
    return "; ".join(reasons)


def generate_cases(
    suite: str,
    models: Sequence[str] | None = None,
    configs: Sequence[str] | None = None,
    backends: Sequence[str] | None = None,
    traits: TraitsOf = traits_of,
    large: bool = False,
) -> list[Case]:
    """Every case of ``suite``: models × (fp32 reference + the suite's presets) × backends.

    A backend that cannot take a config's artifact (an ORT-quantized graph on torch eager) or a config that
    does not apply to a model (a trait it lacks, or the model declines it: :func:`not_applicable` says why) yields
    no case at all; a backend unavailable here yields cases skipped with the backend's reason, and so does a
    precision the backend would only emulate here (bf16 on a CPU without bf16 instructions) unless ``configs``
    names it. With no ``models`` named, models tagged ``large`` are left out unless ``large``; so are presets whose
    config is large, unless ``configs`` names them. The fp32 reference
    of each (model, backend) comes first, so speedups are side by side; it is kept
    even when ``configs`` filters it out, since every other case needs it, and left out where the suite has no
    case on that backend (training techniques run on torch eager only). ``configs`` names absent from this suite
    select nothing here (they may be another suite's presets).
    """
    chosen = chosen_presets(suite, configs, large)
    model_names = list(models) if models else default_models(large)
    backend_names = list(backends) if backends else BACKENDS.names()
    cases: list[Case] = []
    for model_name in model_names:
        spec = MODELS.get(model_name)
        applicable = [c for c in chosen if inapplicable(suite, spec, c, traits) is None]
        for backend_name in backend_names:
            backend = BACKENDS.get(backend_name)
            availability = backend.availability()
            skip = None if availability.ok else f"{backend_name} unavailable: {availability.reason}"
            cells = [
                Case(suite, model_name, cfg, backend_name, skip or _emulated(backend, cfg, configs))
                for cfg in applicable
                if backend.supports(cfg) and cfg.runs_on(backend_name)
            ]
            if cells:
                cases.append(Case(suite, model_name, REFERENCE, backend_name, skip))
                cases.extend(cells)
    return cases
