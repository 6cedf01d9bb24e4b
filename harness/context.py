"""Context: what techniques and backends may use besides their inputs — the on-disk cache, the thread count and the
training seeds' offset."""

from __future__ import annotations

import dataclasses

from harness.cache import Cache


@dataclasses.dataclass
class Context:
    cache: Cache
    threads: int = 1
    # Added to every training seed (references and training arms): other weights from the same recipe, as another
    # machine's numerics give — to check that verdicts hold where the baselines' weights do not reproduce.
    seed_offset: int = 0
