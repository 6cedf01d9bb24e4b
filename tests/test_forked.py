"""Jobs spread over forked processes: each runs once, a failed process is reported and its jobs are redone by the
caller, a bad process count is refused in one line."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from harness import forked
from harness.errors import ConfigError


def _writer(tmp_path: Path):
    def work(job: int) -> None:
        (tmp_path / f"{job}.{os.getpid()}").write_text("")

    return work


def test_every_job_runs_once_spread_over_the_processes(tmp_path):
    assert forked.spread(list(range(7)), _writer(tmp_path), count=3) == 0
    done = [p.name.split(".") for p in tmp_path.iterdir()]
    assert sorted(int(job) for job, _ in done) == list(range(7))
    pids = {pid for _, pid in done}
    assert len(pids) == 3 and str(os.getpid()) in pids
    here = sorted(int(job) for job, pid in done if pid == str(os.getpid()))
    assert here == [0, 3, 6]  # this process takes jobs[0::n]


def test_one_process_runs_everything_here(tmp_path):
    assert forked.spread([1, 2], _writer(tmp_path), count=1) == 0
    assert {p.name.split(".")[1] for p in tmp_path.iterdir()} == {str(os.getpid())}


def test_a_failed_process_is_counted_and_logged(tmp_path, caplog):
    def work(job: int) -> None:
        if job == 1:
            raise RuntimeError("boom")
        (tmp_path / str(job)).write_text("")

    with caplog.at_level(logging.WARNING, logger="harness.forked"):
        assert forked.spread([0, 1, 2, 3], work, count=2) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["0", "2"]  # the child stopped at its failing job
    assert "its jobs run here" in caplog.text


def test_an_error_here_waits_for_the_children_then_raises(tmp_path):
    def work(job: int) -> None:
        if job == 0:
            raise ValueError("here")
        (tmp_path / str(job)).write_text("")

    with pytest.raises(ValueError, match="here"):
        forked.spread([0, 1], work, count=2)
    assert (tmp_path / "1").exists()  # the child finished before the error came out


def test_the_process_count_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv(forked.ENV_VAR, "3")
    assert forked.processes() == 3
    monkeypatch.delenv(forked.ENV_VAR)
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "64")
    assert forked.processes() == 1  # the CPUs are shared among xdist's workers


@pytest.mark.parametrize("raw", ["0", "two", "-1"])
def test_a_bad_process_count_is_refused_in_one_line(monkeypatch, raw):
    monkeypatch.setenv(forked.ENV_VAR, raw)
    with pytest.raises(ConfigError, match=r"OPTBENCH_TRAIN_PROCESSES is .*expected a whole number >= 1") as info:
        forked.processes()
    assert "\n" not in str(info.value)
