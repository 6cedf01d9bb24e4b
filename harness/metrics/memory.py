"""Peak resident memory during inference, sampled with psutil (tracemalloc does not see torch tensors)."""

from __future__ import annotations

import dataclasses
import threading
from types import TracebackType
from typing import Any

import psutil


@dataclasses.dataclass(frozen=True)
class MemoryStats:
    """``peak_rss_bytes``: highest RSS seen while the model ran; ``delta_rss_bytes``: that peak minus the RSS
    before the runner was prepared (what preparing and running this model cost); ``device_peak_bytes``: CUDA
    peak allocation, where there is a GPU."""

    peak_rss_bytes: int
    delta_rss_bytes: int
    device_peak_bytes: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class PeakRSS:
    """Context manager that polls this process's RSS from a background thread and keeps the peak."""

    def __init__(self, interval_s: float = 0.001, start_rss: int | None = None) -> None:
        self._proc = psutil.Process()
        self._interval = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.start_rss = start_rss if start_rss is not None else self.rss()
        self.peak = self.start_rss

    def rss(self) -> int:
        return int(self._proc.memory_info().rss)

    def _poll(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.rss())
            self._stop.wait(self._interval)

    def __enter__(self) -> PeakRSS:
        self.peak = max(self.peak, self.rss())
        self._thread = threading.Thread(target=self._poll, name="optbench-rss", daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.peak = max(self.peak, self.rss())

    def stats(self, device_peak_bytes: int | None = None) -> MemoryStats:
        return MemoryStats(self.peak, max(0, self.peak - self.start_rss), device_peak_bytes)
