"""Backends turn an artifact into a Runner on a device; each says whether it can run here and why not."""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from harness.artifact import Artifact, ArtifactKind, Precision
from harness.context import Context
from harness.registry import Registry

if TYPE_CHECKING:
    from harness.techniques.base import TechniqueConfig
    from model_zoo.spec import Inputs


@dataclasses.dataclass(frozen=True)
class Availability:
    ok: bool
    reason: str = ""


class Runner(abc.ABC):
    """A prepared model. ``bind(inputs)`` returns the zero-argument call that is timed; it includes any
    device synchronisation, so a timing of it covers the device's work."""

    backend: str
    device: str
    threads: int
    size_bytes: int  # serialized size of what this runner executes

    @abc.abstractmethod
    def bind(self, inputs: Inputs) -> Callable[[], Any]:
        """Convert ``inputs`` once (outside any timing) and return the call that runs inference on them."""

    @abc.abstractmethod
    def to_numpy(self, output: Any) -> np.ndarray:
        """The first output of a bound call as a float32 host array."""

    def __call__(self, inputs: Inputs) -> np.ndarray:
        return self.to_numpy(self.bind(inputs)())

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release sessions and device memory."""


class Backend(abc.ABC):
    name: ClassVar[str]
    device: ClassVar[str] = "cpu"
    accepts: ClassVar[frozenset[ArtifactKind]]
    precisions: ClassVar[frozenset[Precision]]

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    @classmethod
    @abc.abstractmethod
    def availability(cls) -> Availability:
        """Whether this backend can run on this machine, and if not, why."""

    @classmethod
    def supports(cls, config: TechniqueConfig) -> bool:
        """Whether the artifacts ``config`` makes can run here at all (decides which cases exist)."""
        return config.output_kind in cls.accepts and config.precision in cls.precisions

    @classmethod
    def emulated(cls, precision: Precision) -> str | None:
        """Why ``precision`` would only be emulated on this machine (no instructions for it), or None.

        Such cases are skipped with the reason unless their config is selected by name: their speed is the
        emulation's, and measuring it cost most of a run's time on a CPU without bf16 instructions."""
        return None

    @abc.abstractmethod
    def prepare(self, artifact: Artifact, example: Inputs, input_names: tuple[str, ...]) -> Runner:
        """Make a runner for ``artifact``; ``example`` is a batch of real inputs for export or compilation."""


BACKENDS: Registry[type[Backend]] = Registry("backend")


def register_backend(cls: type[Backend]) -> type[Backend]:
    BACKENDS.add(cls.name, cls)
    return cls
