"""``python -m harness.report results/run-*.json -o report.html``: render the HTML report from run records.

Several records render side by side, each labelled with where it was measured. ``--merge`` takes them as the shards
of one run (CI machines that each ran ``pytest suites --splits N --group i``): one merged record is written to
``--record-dir``, appended to the history as one run, and rendered as one.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

from harness.errors import OptbenchError
from harness.report import html
from harness.result import RunResult


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.report", description=__doc__.splitlines()[0])
    parser.add_argument("records", nargs="+", type=Path, metavar="RUN_JSON",
                        help="run records (results/run-*.json, each with its .samples.npz beside it); several render "
                             "side by side")
    parser.add_argument("-o", "--output", type=Path, default=Path("report.html"), metavar="PATH",
                        help="where to write the page (default: report.html)")
    parser.add_argument("--history", metavar="URL", default=None,
                        help="a history database (SQLAlchemy URL) to draw trends from (default: the records given; "
                             "with --merge: sqlite:///<record dir>/history.sqlite, which the merged run is appended "
                             "to; off for none)")
    parser.add_argument("--merge", action="store_true",
                        help="the records are shards of one run: write one merged record, append it to the history "
                             "as one run, render it as one; refused for records of different commits or machine "
                             "classes")
    parser.add_argument("--allow-mixed", action="store_true",
                        help="with --merge: merge records of different commits or machine classes (the merged "
                             "record notes what differed)")
    parser.add_argument("--record-dir", type=Path, default=Path("results"), metavar="DIR",
                        help="with --merge: where the merged run-<timestamp>.json goes (default: results)")
    args = parser.parse_args(argv)
    if args.allow_mixed and not args.merge:
        parser.error("--allow-mixed qualifies --merge: give --merge too")
    start = time.perf_counter()
    try:
        results = [RunResult.load(p) for p in args.records]
        url = args.history
        if args.merge:
            results = [_merged(results, args.allow_mixed, args.record_dir)]
            url = url or f"sqlite:///{args.record_dir / 'history.sqlite'}"
        rows = None
        if url and url != "off":
            from harness import history

            if args.merge:
                history.append(url, results[0], results[0].source)
            rows = history.recent(url)
        html.write(results, args.output, rows)
    except OptbenchError as exc:
        print(f"optbench report: {exc}", file=sys.stderr)
        return 2
    size = args.output.stat().st_size
    print(f"wrote {args.output} ({size / 1e6:.2f} MB, {time.perf_counter() - start:.2f} s)")
    return 0


def _merged(results: list[RunResult], allow_mixed: bool, record_dir: Path) -> RunResult:
    """The shards merged and written as one run record; says so on stdout."""
    from harness.merge import merge
    from harness.report import json_report

    merged = merge(results, allow_mixed=allow_mixed)
    path = json_report.write_run(merged, record_dir)
    print(f"merged {len(results)} shard record(s), {len(merged.cases)} cases, into {path}")
    return dataclasses.replace(merged, source=str(path))


if __name__ == "__main__":
    sys.exit(main())
