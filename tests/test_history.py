"""The run history: appended through SQLAlchemy to SQLite by default and to a real PostgreSQL server, by
concurrent runs without losing a row; an unreachable database is one clear error."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from harness import history
from harness.result import RunResult
from tests.postgres import postgres_url  # noqa: F401 - the session fixture
from tests.report import records


def _result(commit: str = "abc123", started: str = "2026-11-28T19:00:00Z") -> RunResult:
    return RunResult.from_dict(records.run(commit=commit, started=started))


def test_runs_append_to_sqlite_and_read_back_as_trend_points(tmp_path):
    url = history.default_url(tmp_path / "results")
    first = history.append(url, _result("c1"), "run-1.json")
    second = history.append(url, _result("c2", "2026-11-28T20:00:00Z"))
    assert second == first + 1
    n_cases = len(_result().cases)
    assert history.count_rows(url) == (2, 2 * n_cases)
    rows = history.recent(url)
    assert [r["commit"] for r in rows] == ["c1"] * n_cases + ["c2"] * n_cases
    int8 = next(r for r in rows if r["case_id"] == "digits_cnn-int8-onnxruntime")
    assert (int8["quality"], int8["latency_p50_s"], int8["speedup"], int8["status"]) == (0.955, 0.0012, 1.5, "fail")
    assert history.recent(url, max_runs=1)[0]["commit"] == "c2"


def test_an_empty_store_has_no_history(tmp_path):
    assert history.recent(history.default_url(tmp_path)) == []


def test_an_unreachable_database_is_one_clear_error_with_the_password_hidden():
    url = "postgresql+psycopg://user:secret@127.0.0.1:1/optbench"
    with pytest.raises(history.HistoryError, match=r"^history database postgresql\+psycopg://user:\*\*\*@127.0.0.1:1/"
                                                   r"optbench: cannot append the run: OperationalError") as err:
        history.append(url, _result())
    assert "secret" not in str(err.value)


def test_a_malformed_url_names_what_was_expected():
    with pytest.raises(history.HistoryError, match="expected a SQLAlchemy URL such as sqlite:///"):
        history.append("nosuchdb://x", _result())


APPEND = textwrap.dedent("""
    import sys
    from harness import history
    from harness.result import RunResult
    from tests.report import records

    url, who, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    for i in range(n):
        history.append(url, RunResult.from_dict(records.run(commit=f"{who}-{i}")))
""")


def _concurrent_appends(url: str, writers: int = 2, runs: int = 5) -> None:
    procs = [subprocess.Popen([sys.executable, "-c", APPEND, url, f"w{w}", str(runs)], stderr=subprocess.PIPE,
                              text=True) for w in range(writers)]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * writers, errors


def test_two_concurrent_runs_append_to_postgresql_without_losing_a_row(postgres_url):  # noqa: F811
    _concurrent_appends(postgres_url)
    n_cases = len(_result().cases)
    assert history.count_rows(postgres_url) == (10, 10 * n_cases)
    commits = {r["commit"] for r in history.recent(postgres_url)}
    assert commits == {f"w{w}-{i}" for w in range(2) for i in range(5)}


def test_two_concurrent_runs_append_to_sqlite_without_losing_a_row(tmp_path):
    url = history.default_url(tmp_path)
    _concurrent_appends(url)
    assert history.count_rows(url) == (10, 10 * len(_result().cases))


def test_pruning_keeps_the_newest_runs_and_their_cases_and_shrinks_the_file(tmp_path):
    url = history.default_url(tmp_path)
    ids = [history.append(url, _result(f"c{i}", f"2026-11-28T{10 + i}:00:00Z")) for i in range(5)]
    n_cases = len(_result().cases)
    size = (tmp_path / "history.sqlite").stat().st_size
    assert history.prune(url, 2) == (3, 3 * n_cases)
    assert history.count_rows(url) == (2, 2 * n_cases)
    assert sorted({r["run"] for r in history.recent(url)}) == ids[-2:]
    assert (tmp_path / "history.sqlite").stat().st_size < size  # VACUUMed
    assert history.prune(url, 2) == (0, 0)
    with pytest.raises(history.HistoryError, match="keep_runs must be at least 1, got 0"):
        history.prune(url, 0)


def test_the_history_command_counts_and_prunes(tmp_path, capsys):
    url = history.default_url(tmp_path)
    assert history.main(["count", "--url", url]) == 0
    assert capsys.readouterr().out.endswith(": 0 run(s), 0 case row(s)\n")
    for i in range(3):
        history.append(url, _result(f"c{i}"))
    assert history.main(["prune", "--keep-runs", "1", "--url", url]) == 0
    assert "deleted 2 run(s)" in capsys.readouterr().out and history.count_rows(url)[0] == 1
    assert history.main(["prune", "--keep-runs", "0", "--url", url]) == 2
    assert capsys.readouterr().err == ("optbench history: keep_runs must be at least 1, got 0; to drop a whole "
                                       "history, delete the database\n")
    with pytest.raises(SystemExit):
        history.main(["prune", "--url", url])
    assert "prune needs --keep-runs N" in capsys.readouterr().err
