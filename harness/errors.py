"""Typed errors: every user-facing failure of optbench is one of these, with a one-line message."""

from __future__ import annotations


def one_line(exc: BaseException, limit: int = 300) -> str:
    """``Type: first line of the message`` (at most ``limit`` characters of it): what a one-line error quotes."""
    return f"{type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0][:limit]}"


class OptbenchError(Exception):
    """Base of every error optbench raises on purpose."""


class ConfigError(OptbenchError, ValueError):
    """A config field holds a value outside what it accepts."""


class RegistryError(OptbenchError, KeyError):
    """A name is registered twice, or looked up and not found."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


class BaselineError(OptbenchError):
    """A baseline file is unreadable, corrupt or of an unknown schema."""


class BackendUnavailable(OptbenchError):
    """A backend cannot run on this machine (missing library or device)."""


class ExportError(OptbenchError):
    """Converting a model to another format (ONNX) failed."""


class TechniqueError(OptbenchError):
    """Applying a technique failed: a quantizer or other tool refused the model (the reason is in the message)."""


class ModelOutputError(OptbenchError):
    """A model produced outputs that cannot be measured (NaN, Inf, wrong shape)."""


class CacheError(OptbenchError):
    """A cache entry is missing, stale or corrupt (callers rebuild it)."""


class HookError(OptbenchError):
    """A training hook raised: the message names the hook, the method it raised in and the training run."""


class ModelError(OptbenchError):
    """A model could not be built, given its data, trained or exported: the message names the model and the phase."""
