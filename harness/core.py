"""The core vocabulary every layer shares: the verdict statuses, a contract (:class:`Expectation`) and where a
baseline figure holds (:class:`Scope`). It imports nothing of the harness, so techniques, the
environment capture, the gate and the report can all speak it without importing each other."""

from __future__ import annotations

import dataclasses
import enum
from typing import Literal

Op = Literal[">=", "<=", ">", "<"]


class Status(enum.StrEnum):
    """The one vocabulary of verdicts and case outcomes, from the gate to the report."""

    PASS = "pass"
    FAIL = "fail"
    KNOWN = "known"  # a contract the accepted baseline already records as unmet: a finding, reported each run
    INCONCLUSIVE = "inconclusive"  # a contract's interval holds its margin: undecided, shown, does not fail
    NOT_JUDGED = "skip"  # a check not judged (other machine class, tolerance off); the reason says why
    NEW = "new"  # a case with no baseline, let through by --optbench-allow-new
    ERROR = "error"  # the case could not be measured
    SKIPPED = "skipped"  # the case was not run (backend unavailable, incompatible)


Decision = Literal["point", "interval"]


@dataclasses.dataclass(frozen=True)
class Expectation:
    """A contract: ``metric op threshold``, e.g. ``quality.retention >= 0.99``.

    ``decision`` "point" judges the figure itself: for deterministic figures (sizes, op counts, sparsity, rates).
    "interval" judges a noisy figure by its 95 % interval (``interval_keys``): met when the whole interval clears
    the margin (superiority for ``> 0``, non-inferiority for ``>= -margin``), unmet when it lies wholly beyond,
    else inconclusive — shown with how many more ``unit`` would decide it, never failing the run.
    """

    name: str
    metric: str
    op: Op
    threshold: float
    decision: Decision = "point"
    unit: str = ""  # what the interval's n counts ("seeds", "test items", "rounds")
    # A precondition: (metric, what it means). Where the metric is 0 or missing, the contract is not exercised on
    # this model and not judged (NOT_JUDGED), saying why (a diverging regime whose control does not diverge).
    given: tuple[str, str] | None = None
    # An interval over the test items of one trained model (retention, fragility, rule fidelity): it says nothing of
    # how the figure moves with the weights. On weights other than the baseline's (another CPU class's training
    # numerics, another seed), the gate widens it by the case's measured spread of this figure across weights
    # (``harness.accept --weights-spread``), so that one draw of a recipe is not judged a regression.
    across_weights: bool = False


class Scope(enum.StrEnum):
    """Where a baseline figure still means something (see :func:`harness.env.comparable_scopes`)."""

    ANYWHERE = "anywhere"  # quality, size, proofs: properties of the artifact
    SAME_CLASS = "same machine class"  # speedups and probe-normalised latency: ISA, cores, threads, GPU, libraries


__all__ = ["Decision", "Expectation", "Op", "Scope", "Status"]
