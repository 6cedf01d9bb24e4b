"""The model zoo: built-in models, their embedded data, deterministic training and cached reference loading.

Importing the package registers the built-in models. More models come from the ``optbench.models`` entry-point
group (:func:`load_entry_point_models`) or from a user's own ``conftest.py`` via :func:`register_model`.
"""

from __future__ import annotations

import logging
import types
from collections.abc import Iterable
from importlib import metadata
from typing import TYPE_CHECKING, Any

from harness.errors import RegistryError
from model_zoo import (  # noqa: F401  (registers the built-in models)
    cancer_mlp,
    digits_cnn,
    digits_resnet,
    efficientnet_lite0,
    minilm,
)
from model_zoo.spec import MODELS, Inputs, ModelSpec, Split, Splits, Task, TrainRecipe, register_model

if TYPE_CHECKING:
    from model_zoo.training import load_reference, reference_key, train

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "optbench.models"

__all__ = [
    "ENTRY_POINT_GROUP",
    "MODELS",
    "Inputs",
    "ModelSpec",
    "Split",
    "Splits",
    "Task",
    "TrainRecipe",
    "get_model",
    "load_entry_point_models",
    "load_reference",
    "reference_key",
    "register_model",
    "train",
]


# Reference loading (model_zoo.training) trains with harness.training, whose loop reads this package's data types
# (model_zoo.spec): imported on first use, so that importing either one first never meets the other half-made.
_TRAINING = frozenset({"load_reference", "reference_key", "train"})


def __getattr__(name: str) -> Any:
    if name in _TRAINING:
        from model_zoo import training

        return getattr(training, name)
    raise AttributeError(f"module 'model_zoo' has no attribute {name!r}")


def get_model(name: str) -> ModelSpec:
    """The registered spec called ``name``; an unknown name is a RegistryError that lists the valid ones."""
    return MODELS.get(name)


def _register_once(spec: ModelSpec, origin: str) -> str:
    """Register ``spec``, accepting the very same spec again (entry points may be loaded more than once)."""
    if spec.name in MODELS:
        existing = MODELS.get(spec.name)
        if existing is spec or existing == spec:
            return spec.name
        raise RegistryError(f"model {spec.name!r} from {origin} is already registered by a different spec")
    register_model(spec)
    return spec.name


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _load_entry_point(ep: metadata.EntryPoint) -> list[str]:
    origin = f"entry point {ep.name!r} ({ep.value})"
    before = set(MODELS.names())
    try:
        obj = ep.load()
        if isinstance(obj, ModelSpec):
            return [_register_once(obj, origin)]
        if isinstance(obj, types.ModuleType):  # a module that registers its models on import
            return [name for name in MODELS.names() if name not in before]
        if not callable(obj):
            raise TypeError(f"resolved to {type(obj).__name__}, expected a ModelSpec, a callable or a module")
        result = obj()
        if isinstance(result, ModelSpec):
            return [_register_once(result, origin)]
        if isinstance(result, Iterable) and not isinstance(result, str | bytes):
            specs = list(result)
            bad = [type(s).__name__ for s in specs if not isinstance(s, ModelSpec)]
            if bad:
                raise TypeError(f"returned an iterable holding {', '.join(sorted(set(bad)))}, expected ModelSpecs")
            return [_register_once(spec, origin) for spec in specs]
        raise TypeError(f"returned {type(result).__name__}, expected a ModelSpec or an iterable of them")
    except RegistryError:
        raise
    except Exception as exc:
        raise RegistryError(f"model {origin} failed to load: {_one_line(exc)}") from exc


def load_entry_point_models() -> list[str]:
    """Register the models of every ``optbench.models`` entry point; returns the model names they provided.

    An entry point may name a ModelSpec, a callable returning one or an iterable of them, or a module that
    registers its models on import. Loading twice is harmless; a different model under a taken name is an error.
    """
    names: list[str] = []
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        provided = _load_entry_point(ep)
        logger.debug("entry point %s provided models %s", ep.name, provided)
        names.extend(provided)
    return names
