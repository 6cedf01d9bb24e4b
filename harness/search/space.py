"""Search spaces as plain data: the zoo declares them without importing Optuna, the tuner turns them into trials.

A dimension is ``("log", low, high)`` or ``("float", low, high)`` for a real range (log-uniform or uniform),
``("int", low, high)`` for whole numbers, and ``("choice", a, b, ...)`` for a categorical choice.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from harness.errors import ConfigError

KINDS = ("log", "float", "int", "choice")
Space = Mapping[str, tuple[Any, ...]]


def validate_space(space: Space, field: str = "search_space") -> None:
    """Raise ConfigError naming ``field`` and the dimension when a space is empty or a dimension malformed."""
    if not space:
        raise ConfigError(f"`{field}` must declare at least one dimension, got an empty search space")
    for name, dim in space.items():
        where = f"`{field}.{name}`"
        if not isinstance(dim, tuple | list) or not dim or dim[0] not in KINDS:
            raise ConfigError(f"{where} must start with one of {', '.join(KINDS)}, got {dim!r}")
        kind, *values = dim
        if kind == "choice":
            if not values:
                raise ConfigError(f"{where} must list at least one choice, got none")
            continue
        if len(values) != 2 or not all(isinstance(v, int | float) and math.isfinite(v) for v in values):
            raise ConfigError(f"{where} must be ({kind!r}, low, high), got {dim!r}")
        low, high = values
        if not low < high or (kind == "log" and low <= 0):
            raise ConfigError(f"{where} must have 0 < low < high for 'log' and low < high otherwise, got {dim!r}")


def suggest(trial: Any, space: Space) -> dict[str, Any]:
    """One point of ``space`` drawn by an Optuna trial (its sampler decides how)."""
    params: dict[str, Any] = {}
    for name, (kind, *values) in space.items():
        if kind == "choice":
            params[name] = trial.suggest_categorical(name, list(values))
        elif kind == "int":
            params[name] = trial.suggest_int(name, int(values[0]), int(values[1]))
        else:
            params[name] = trial.suggest_float(name, float(values[0]), float(values[1]), log=kind == "log")
    return params


def signature(space: Space) -> dict[str, list[Any]]:
    """A JSON-able form of ``space`` stored with a study, so a study reused with another space is refused."""
    return {name: list(dim) for name, dim in sorted(space.items())}
