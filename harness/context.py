"""Context: what techniques and backends may use besides their inputs — the on-disk cache and the thread count."""

from __future__ import annotations

import dataclasses

from harness.cache import Cache


@dataclasses.dataclass
class Context:
    cache: Cache
    threads: int = 1
