"""``python -m harness.report results/run-*.json -o report.html``: render the HTML report from run records."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from harness.errors import OptbenchError
from harness.report import html
from harness.result import RunResult


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.report", description=__doc__)
    parser.add_argument("records", nargs="+", type=Path, metavar="RUN_JSON",
                        help="run records (results/run-*.json); several merge into one report")
    parser.add_argument("-o", "--output", type=Path, default=Path("report.html"), metavar="PATH",
                        help="where to write the page (default: report.html)")
    parser.add_argument("--history", metavar="URL", default=None,
                        help="a history database (SQLAlchemy URL) to draw trends from (default: the records given)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        results = [RunResult.load(p) for p in args.records]
        rows = None
        if args.history:
            from harness import history

            rows = history.recent(args.history)
        html.write(results, args.output, rows)
    except OptbenchError as exc:
        print(f"optbench report: {exc}", file=sys.stderr)
        return 2
    size = args.output.stat().st_size
    print(f"wrote {args.output} ({size / 1e6:.2f} MB, {time.perf_counter() - start:.2f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
