"""How the terminal table and the generated docs write times and sizes (no torch: reports render anywhere)."""

from __future__ import annotations


def milliseconds(seconds: float | None, empty: str = "-") -> str:
    """``0.052 ms`` below 10 ms, ``23.3 ms`` above; ``empty`` for a missing figure."""
    if seconds is None:
        return empty
    return f"{seconds * 1e3:.3f} ms" if seconds < 0.01 else f"{seconds * 1e3:.1f} ms"


def byte_size(n: float | None, empty: str = "-") -> str:
    """Binary units with one decimal (``4.7 MiB``); ``empty`` for a missing figure."""
    if n is None:
        return empty
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(n) >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n:.0f} B"
