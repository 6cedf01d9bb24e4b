"""Peak RSS of a block of work, sampled from a background thread."""

import numpy as np

from harness.metrics.memory import MemoryStats, PeakRSS


def test_a_known_allocation_shows_up_in_the_peak_and_the_delta():
    size = 64 * 2**20
    with PeakRSS(interval_s=0.001) as mem:
        block = np.ones(size, dtype=np.uint8)  # written, so the pages are resident
        assert int(block[::4096].sum()) == size // 4096
        del block
    stats = mem.stats()
    assert stats.delta_rss_bytes >= 0.8 * size  # freed before exit: only the sampler or the entry value saw it
    assert stats.peak_rss_bytes >= stats.delta_rss_bytes and stats.device_peak_bytes is None


def test_stats_never_report_a_negative_delta_and_carry_the_device_peak():
    mem = PeakRSS(start_rss=10**15)  # started "above" the current RSS: a delta below zero is clamped
    with mem:
        pass
    assert mem.stats(123) == MemoryStats(10**15, 0, 123)
