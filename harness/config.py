"""Base for frozen, versioned, serializable configs that validate themselves and name the bad field."""

from __future__ import annotations

import dataclasses
import enum
import math
from typing import Any, ClassVar, Self

from harness.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class Config:
    """A frozen config. Subclasses are dataclasses too; ``VERSION`` changes when a field's meaning does.

    ``name`` identifies a preset (it becomes part of a case id), so it must be a short slug.
    """

    name: str
    VERSION: ClassVar[int] = 1

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name or not all(c.isalnum() or c in "_-." for c in self.name):
            raise ConfigError(f"`name` must be a non-empty slug of letters, digits, '_', '-' or '.', got {self.name!r}")
        self.validate()

    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the field when a value is out of range. Override per config."""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready form: the type, the version and every field."""
        out: dict[str, Any] = {"type": type(self).__name__, "version": self.VERSION}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, enum.Enum):
                value = value.value
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """Inverse of :meth:`to_dict`; refuses another type, another version or unknown fields."""
        data = dict(data)
        typ = data.pop("type", cls.__name__)
        version = data.pop("version", cls.VERSION)
        if typ != cls.__name__:
            raise ConfigError(f"`type` must be {cls.__name__!r}, got {typ!r}")
        if version != cls.VERSION:
            raise ConfigError(f"`version` of {cls.__name__} must be {cls.VERSION}, got {version!r}")
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - set(fields))
        if unknown:
            raise ConfigError(
                f"unknown field(s) for {cls.__name__}: {', '.join(unknown)}; expected {', '.join(fields)}"
            )
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            if isinstance(value, list):
                value = tuple(value)
            kwargs[key] = value
        return cls(**kwargs)

    def replace(self, **changes: Any) -> Self:
        return dataclasses.replace(self, **changes)


def require_range(
    field: str, value: float, low: float, high: float, *, low_open: bool = False, high_open: bool = False
) -> None:
    """Raise ConfigError unless ``low <= value <= high`` (with open ends where asked)."""
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        ok = (value > low if low_open else value >= low) and (value < high if high_open else value <= high)
    if not ok:
        interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        raise ConfigError(f"`{field}` must be in {interval}, got {value!r}")


def require_choice(field: str, value: object, choices: tuple[object, ...] | list[object]) -> None:
    """Raise ConfigError unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ConfigError(f"`{field}` must be one of {', '.join(map(str, choices))}; got {value!r}")


def require_int(field: str, value: object, minimum: int) -> None:
    """Raise ConfigError unless ``value`` is a whole number >= ``minimum``."""
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ConfigError(f"`{field}` must be a whole number >= {minimum}, got {value!r}")
