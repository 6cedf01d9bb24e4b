"""Work figures of one counted job, read from Callgrind's dumps, and the cycle estimate made from them."""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.errors import OptbenchError

# Cycles a hit costs at each level, in the estimate iai-callgrind and CodSpeed make from Callgrind's cache
# simulation: an L1 hit 1 cycle, a last-level hit 5, a miss to memory 35. A model of a CPU, not a measurement of
# one: it ranks work by its memory traffic as well as its instructions.
L1_HIT, LL_HIT, RAM_HIT = 1, 5, 35


class DumpError(OptbenchError):
    """A Callgrind dump that cannot be read."""


@dataclasses.dataclass(frozen=True)
class Counts:
    """One dump's totals: Callgrind's events (``Ir`` always; ``Dr``, ``I1mr``... with the cache simulation)."""

    events: Mapping[str, int]

    @property
    def instructions(self) -> int:
        return self.events["Ir"]

    @property
    def cache_simulated(self) -> bool:
        return "D1mr" in self.events

    def misses(self) -> tuple[int, int]:
        """(L1 misses, last-level misses), instruction and data together."""
        e = self.events
        return (e["I1mr"] + e["D1mr"] + e["D1mw"], e["ILmr"] + e["DLmr"] + e["DLmw"])

    def estimated_cycles(self) -> int:
        accesses = self.events["Ir"] + self.events["Dr"] + self.events["Dw"]
        l1_misses, ll_misses = self.misses()
        return (accesses - l1_misses) * L1_HIT + (l1_misses - ll_misses) * LL_HIT + ll_misses * RAM_HIT


def read_dumps(paths: Sequence[Path]) -> dict[str, Counts]:
    """Each dump's totals by the name its client request gave it (``desc: Trigger: Client Request: NAME``)."""
    out: dict[str, Counts] = {}
    for path in paths:
        name, events, summary = None, None, None
        for line in path.read_text(errors="replace").splitlines():
            if line.startswith("desc: Trigger: Client Request: "):
                name = line.removeprefix("desc: Trigger: Client Request: ").strip()
            elif line.startswith("events: "):
                events = line.split()[1:]
            elif line.startswith("summary: "):
                summary = [int(v) for v in line.split()[1:]]
        if name is None:
            continue  # the dump Valgrind writes at program termination
        if events is None or summary is None or len(events) != len(summary):
            raise DumpError(f"callgrind dump {path} has no events/summary line to read; expected a complete dump")
        out[name] = Counts(dict(zip(events, summary, strict=True)))
    return out


@dataclasses.dataclass(frozen=True)
class WorkFigures:
    """Work per inference of one job: the median over ``repeats`` counted windows of ``calls`` calls each, and how
    far the windows differed (``spread``: (max - min) / median of the instructions)."""

    instructions: float
    calls: int
    repeats: int
    spread: float
    estimated_cycles: float | None = None
    l1_misses: float | None = None
    ll_misses: float | None = None

    @classmethod
    def from_counts(cls, windows: Sequence[Counts], calls: int) -> WorkFigures:
        if not windows:
            raise DumpError("no counted window to summarise; expected at least one callgrind dump per job")
        instr = [w.instructions / calls for w in windows]
        mid = statistics.median(instr)
        spread = (max(instr) - min(instr)) / mid if mid else 0.0
        if not all(w.cache_simulated for w in windows):
            return cls(mid, calls, len(windows), spread)
        misses = [w.misses() for w in windows]
        return cls(mid, calls, len(windows), spread,
                   estimated_cycles=statistics.median(w.estimated_cycles() / calls for w in windows),
                   l1_misses=statistics.median(m[0] / calls for m in misses),
                   ll_misses=statistics.median(m[1] / calls for m in misses))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WorkFigures:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})
