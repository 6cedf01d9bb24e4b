"""Context: everything run-wide that techniques and backends may use besides their inputs, made once per run
by whoever runs it (the session, a CLI, a test) and passed down — no module holds run state of its own.

It carries the on-disk cache, the thread count, the training seeds' offset, where Optuna studies live and the
memo stores of what this run already computed. The cost analysis's price table is an argument of the analysis
(harness.analysis.plugin builds it once from the run's options) and the work counter is the session's: neither is
run state a technique reads.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from harness.cache import Cache


@dataclasses.dataclass(frozen=True)
class StudyStorage:
    """Where Optuna studies live: ``url`` None keeps each study in memory (its result goes to the cache); any
    Optuna RDB URL (an SQLite file, PostgreSQL) lets several processes share one. ``study_prefix`` names them."""

    url: str | None = None
    study_prefix: str = "optbench"


class Memos:
    """This run's memo stores, one dict per name (``memos.store("references")``): what was computed once and
    is reused by later cases. They live as long as the context that owns them."""

    def __init__(self) -> None:
        self._stores: dict[str, dict[Any, Any]] = {}

    def store(self, name: str) -> dict[Any, Any]:
        return self._stores.setdefault(name, {})

    def clear(self) -> None:
        for store in self._stores.values():
            store.clear()


@dataclasses.dataclass
class Context:
    cache: Cache
    threads: int = 1
    # Added to every training seed (references and training arms): other weights from the same recipe, as another
    # machine's numerics give — to check that verdicts hold where the baselines' weights do not reproduce.
    seed_offset: int = 0
    optuna: StudyStorage = dataclasses.field(default_factory=StudyStorage)
    memos: Memos = dataclasses.field(default_factory=Memos)

    def with_threads(self, threads: int) -> Context:
        """The same run (cache, storage, memos) at another thread count."""
        return dataclasses.replace(self, threads=threads)
