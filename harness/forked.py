"""Independent, deterministic jobs spread over the CPUs by forking: training runs on one thread (its weights must
not depend on the thread count), so on a 2-core runner one core sat idle through every cold training.

A child shares nothing back but what its jobs write (the cache): the caller runs every job again in this process
afterwards, which loads what a child made and makes anything a child failed to, raising its error here.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable, Sequence
from typing import TypeVar

from harness.env import cpus_available
from harness.errors import ConfigError

logger = logging.getLogger(__name__)

ENV_VAR = "OPTBENCH_TRAIN_PROCESSES"
T = TypeVar("T")


def processes() -> int:
    """How many processes may train at once: ``$OPTBENCH_TRAIN_PROCESSES``, else the CPUs this process may use
    shared among pytest-xdist's workers (1 where fork is missing)."""
    if not hasattr(os, "fork"):
        return 1
    raw = os.environ.get(ENV_VAR, "").strip()
    if raw:
        try:
            value = int(raw)
        except ValueError:
            value = 0
        if value < 1:
            raise ConfigError(f"${ENV_VAR} is {raw!r}; expected a whole number >= 1 (1: train in this process only)")
        return value
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1)
    return max(1, cpus_available() // max(1, workers))


def spread(jobs: Sequence[T], work: Callable[[T], object], count: int | None = None,
           child_setup: Callable[[], object] = lambda: None) -> int:
    """Run ``work`` on every job: ``jobs[i::n]`` in forked child ``i`` (``i >= 1``, after ``child_setup``),
    ``jobs[0::n]`` here, with ``n = min(count, len(jobs))``; wait for the children. Returns how many children
    failed (each is logged)."""
    n = min(processes() if count is None else count, len(jobs))
    if n <= 1:
        for job in jobs:
            work(job)
        return 0
    pids = []
    for i in range(1, n):
        with warnings.catch_warnings():  # Python >= 3.12 warns that forking a threaded process may deadlock
            warnings.simplefilter("ignore", DeprecationWarning)
            pid = os.fork()
        if pid == 0:  # the child: its jobs, then out without running the parent's exit handlers (pytest's)
            code = 0
            try:
                child_setup()
                for job in jobs[i::n]:
                    work(job)
            except BaseException:  # the parent redoes the job and raises its error itself
                code = 1
            finally:
                os._exit(code)
        pids.append(pid)
    try:
        for job in jobs[0::n]:
            work(job)
    finally:
        failed = 0
        for pid in pids:
            _, status = os.waitpid(pid, 0)
            if status != 0:
                failed += 1
                logger.warning("a training process (pid %d) failed with status %d; its jobs run here", pid, status)
    return failed
