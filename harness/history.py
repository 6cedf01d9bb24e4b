"""The run history: every run appended to a database through SQLAlchemy, read back for the report's trends.

The default store is ``results/history.sqlite`` (one machine); ``--optbench-history URL`` points at a shared
database (``postgresql+psycopg://user@host/db``) so a team or a CI fleet sees one history. A run is one row in
``optbench_runs`` and one row per case in ``optbench_cases``, written in one transaction.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from harness.errors import OptbenchError, one_line
from harness.result import RunResult

logger = logging.getLogger(__name__)

# The figures kept per case as columns (queried by trends); the whole flat metric view is kept as JSON too.
FIGURES = {"quality": "quality.value", "latency_p50_s": "latency.p50_s", "speedup": "speedup",
           "size_bytes": "size_bytes", "peak_rss_bytes": "memory.peak_rss_bytes"}

metadata = sa.MetaData()
runs = sa.Table(
    "optbench_runs", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("started", sa.String(32), nullable=False),
    sa.Column("finished", sa.String(32), nullable=False),
    sa.Column("duration_s", sa.Float),
    sa.Column("commit", sa.String(64)),
    sa.Column("machine", sa.String(512)),
    sa.Column("source", sa.String(1024)),
    sa.Column("counts", sa.Text),
    sa.Column("environment", sa.Text),
)
cases = sa.Table(
    "optbench_cases", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.Integer, sa.ForeignKey("optbench_runs.id"), nullable=False, index=True),
    sa.Column("case_id", sa.String(512), nullable=False, index=True),
    sa.Column("suite", sa.String(128)),
    sa.Column("model", sa.String(128)),
    sa.Column("config", sa.String(256)),
    sa.Column("backend", sa.String(128)),
    sa.Column("status", sa.String(16)),
    *(sa.Column(name, sa.Float) for name in FIGURES),
    sa.Column("metrics", sa.Text),
)


class HistoryError(OptbenchError):
    """The history database could not be reached or written: the message names it (password hidden)."""


def default_url(results_dir: Path) -> str:
    return f"sqlite:///{Path(results_dir) / 'history.sqlite'}"


def _label(url: str) -> str:
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return url


def engine_for(url: str) -> Engine:
    """An engine for ``url``; a malformed URL or a missing driver is a HistoryError."""
    try:
        parsed = sa.make_url(url)
        args: dict[str, Any] = {}
        if parsed.get_backend_name() == "sqlite":
            if parsed.database:
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            args["timeout"] = 30  # concurrent runs on one file wait for the writer's lock
        elif parsed.get_backend_name() == "postgresql":
            args["connect_timeout"] = 10
        return sa.create_engine(parsed, connect_args=args)
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ImportError) as exc:
        raise HistoryError(f"history database {_label(url)}: {one_line(exc)}; expected a SQLAlchemy URL such as "
                           "sqlite:///results/history.sqlite or postgresql+psycopg://user@host/db") from None


def _create_tables(engine: Engine) -> None:
    """Create the tables where missing. Two runs creating them at once on a fresh store race (PostgreSQL: a
    duplicate type, SQLite: "table already exists"): the loser tries again and then finds them."""
    for attempt in range(3):
        try:
            metadata.create_all(engine, checkfirst=True)
            return
        except sa.exc.DBAPIError:
            if attempt == 2:
                raise
            time.sleep(0.2 * (attempt + 1))


def append(url: str, result: RunResult, source: str = "") -> int:
    """Append ``result`` (one run row and its case rows, one transaction); returns the run's id in the store."""
    engine = engine_for(url)
    try:
        _create_tables(engine)
        with engine.begin() as conn:
            run_id = conn.execute(runs.insert().values(
                started=result.started, finished=result.finished, duration_s=result.duration_s,
                commit=result.commit, machine=result.machine(), source=source or result.source,
                counts=json.dumps(result.counts()), environment=json.dumps(result.environment, sort_keys=True),
            )).inserted_primary_key[0]
            rows = [_case_row(run_id, case) for case in result.cases]
            if rows:
                conn.execute(cases.insert(), rows)
    except sa.exc.SQLAlchemyError as exc:
        raise HistoryError(f"history database {_label(url)}: cannot append the run: "
                           f"{one_line(getattr(exc, 'orig', None) or exc)}") from None
    finally:
        engine.dispose()
    logger.info("appended run %s to history %s", run_id, _label(url))
    return int(run_id)


def _case_row(run_id: int, case: dict[str, Any]) -> dict[str, Any]:
    metrics = (case.get("record") or {}).get("metrics") or {}
    row = {"run_id": run_id, "case_id": case["case_id"], "suite": case.get("suite"), "model": case.get("model"),
           "config": case.get("config"), "backend": case.get("backend"), "status": case.get("status"),
           "metrics": json.dumps(metrics, sort_keys=True)}
    for column, metric in FIGURES.items():
        value = metrics.get(metric)
        row[column] = float(value) if isinstance(value, int | float) else None
    return row


def recent(url: str, max_runs: int = 30) -> list[dict[str, Any]]:
    """The case rows of the last ``max_runs`` runs, oldest first, each with its run's start time, commit and
    machine: what the report's trend plots draw."""
    engine = engine_for(url)
    try:
        with engine.connect() as conn:
            if not sa.inspect(conn).has_table("optbench_runs"):
                return []
            last = sa.select(runs.c.id).order_by(runs.c.id.desc()).limit(max_runs).subquery()
            query = (sa.select(runs.c.id.label("run"), runs.c.started, runs.c.commit, runs.c.machine,
                               cases.c.case_id, cases.c.suite, cases.c.status, *(cases.c[n] for n in FIGURES))
                     .join(cases, cases.c.run_id == runs.c.id)
                     .where(runs.c.id.in_(sa.select(last.c.id)))
                     .order_by(runs.c.id, cases.c.id))
            return [dict(row._mapping) for row in conn.execute(query)]
    except sa.exc.SQLAlchemyError as exc:
        raise HistoryError(f"history database {_label(url)}: cannot read: "
                           f"{one_line(getattr(exc, 'orig', None) or exc)}") from None
    finally:
        engine.dispose()


def count_rows(url: str) -> tuple[int, int]:
    """(runs, case rows) in the store: for tests and a quick look."""
    engine = engine_for(url)
    try:
        with engine.connect() as conn:
            if not sa.inspect(conn).has_table("optbench_runs"):
                return 0, 0
            n_runs = conn.execute(sa.select(sa.func.count()).select_from(runs)).scalar_one()
            n_cases = conn.execute(sa.select(sa.func.count()).select_from(cases)).scalar_one()
            return int(n_runs), int(n_cases)
    except sa.exc.SQLAlchemyError as exc:
        raise HistoryError(f"history database {_label(url)}: cannot read: "
                           f"{one_line(getattr(exc, 'orig', None) or exc)}") from None
    finally:
        engine.dispose()


def prune(url: str, keep_runs: int) -> tuple[int, int]:
    """Delete all but the newest ``keep_runs`` runs (by id: append order) and their case rows, in one transaction;
    returns (runs, case rows) deleted. A SQLite file is compacted afterwards (VACUUM), so it really shrinks."""
    if keep_runs < 1:
        raise HistoryError(f"keep_runs must be at least 1, got {keep_runs}; to drop a whole history, delete the "
                           "database")
    engine = engine_for(url)
    try:
        with engine.begin() as conn:
            if not sa.inspect(conn).has_table("optbench_runs"):
                return 0, 0
            kept = sa.select(runs.c.id).order_by(runs.c.id.desc()).limit(keep_runs).subquery()
            n_cases = conn.execute(cases.delete().where(cases.c.run_id.not_in(sa.select(kept.c.id)))).rowcount
            n_runs = conn.execute(runs.delete().where(runs.c.id.not_in(sa.select(kept.c.id)))).rowcount
        if n_runs and engine.dialect.name == "sqlite":
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("VACUUM")
    except sa.exc.SQLAlchemyError as exc:
        raise HistoryError(f"history database {_label(url)}: cannot prune: "
                           f"{one_line(getattr(exc, 'orig', None) or exc)}") from None
    finally:
        engine.dispose()
    logger.info("pruned %d run(s) from history %s, keeping the newest %d", n_runs, _label(url), keep_runs)
    return int(n_runs), int(n_cases)


def main(argv: list[str] | None = None) -> int:
    """``python -m harness.history prune --keep-runs N [--url URL]``: keep the newest N runs of a history."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="python -m harness.history", description="Look at or prune a run history.")
    parser.add_argument("command", choices=("prune", "count"),
                        help="prune: keep only the newest --keep-runs runs; count: runs and case rows held")
    parser.add_argument("--url", default=default_url(Path("results")),
                        help="SQLAlchemy URL of the history (default: sqlite:///results/history.sqlite)")
    parser.add_argument("--keep-runs", type=int, metavar="N", default=None, help="with prune: runs to keep (>= 1)")
    args = parser.parse_args(argv)
    if args.command == "prune" and args.keep_runs is None:
        parser.error("prune needs --keep-runs N (the newest N runs are kept)")
    try:
        if args.command == "prune":
            n_runs, n_cases = prune(args.url, args.keep_runs)
            print(f"{_label(args.url)}: deleted {n_runs} run(s) and {n_cases} case row(s); "
                  f"kept the newest {args.keep_runs} run(s)")
        else:
            n_runs, n_cases = count_rows(args.url)
            print(f"{_label(args.url)}: {n_runs} run(s), {n_cases} case row(s)")
    except OptbenchError as exc:
        print(f"optbench history: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
