"""How evenly a split across CI machines comes out, from recorded test durations.

The suites split with pytest-split (``pytest suites --splits N --group i``) by the durations a full run stored
(``pytest suites --store-durations``, into ``.test_durations``). This computes the same split from that file, with
pytest-split's own algorithm, and prints each shard's recorded time and the largest shard against the mean::

    python -m harness.shards --splits 4                 # .test_durations, tests under suites/
    python -m harness.shards --splits 4 --max-ratio 1.15  # exit 1 when the largest shard is above 1.15 x the mean
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from types import SimpleNamespace

from harness.errors import OptbenchError

DEFAULT_DURATIONS = Path(".test_durations")  # pytest-split's default --durations-path
DEFAULT_ALGORITHM = "least_duration"  # pytest-split's most balanced; the order inside a shard stays the suites'


class ShardError(OptbenchError):
    """The durations file is missing or not pytest-split's format, or the split asked for is impossible."""


def load_durations(path: Path, prefix: str = "") -> dict[str, float]:
    """``nodeid -> seconds`` of pytest-split's durations file, only the tests whose node id starts with ``prefix``."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ShardError(f"{path}: no durations file; store one from a full run with "
                         f"`pytest suites --store-durations --durations-path {path}`") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ShardError(f"{path}: not a readable durations file ({exc}); expected pytest-split's JSON object of "
                         "test node id -> seconds") from None
    if isinstance(data, list):  # pytest-split's older list-of-pairs format
        data = dict(data)
    if not isinstance(data, dict) or not all(isinstance(v, int | float) and v >= 0 for v in data.values()):
        raise ShardError(f"{path}: expected pytest-split's JSON object of test node id -> seconds (>= 0)")
    out = {str(k): float(v) for k, v in data.items() if str(k).startswith(prefix)}
    if not out:
        raise ShardError(f"{path}: no recorded test starts with {prefix!r}; expected durations of a run of the suites")
    return out


@dataclasses.dataclass(frozen=True)
class Balance:
    """Recorded seconds per shard and how far the largest is above the mean."""

    shards: tuple[float, ...]
    tests: tuple[int, ...]

    @property
    def mean(self) -> float:
        return sum(self.shards) / len(self.shards)

    @property
    def ratio(self) -> float:
        """Largest shard / mean shard (1.0 is a perfect split)."""
        return max(self.shards) / self.mean if self.mean > 0 else 1.0


def balance(durations: dict[str, float], splits: int, algorithm: str = DEFAULT_ALGORITHM,
            nodeids: list[str] | None = None) -> Balance:
    """The split pytest-split makes of ``nodeids`` (default: every test in ``durations``, in their order) into
    ``splits`` shards, by ``durations``; a test without a duration counts as the mean, as pytest-split does."""
    try:
        from pytest_split.algorithms import Algorithms
    except ImportError:
        raise ShardError("pytest-split is not installed; expected it for splitting (pip install -c constraints.txt "
                         "pytest-split, or the [dev] extra)") from None
    if splits < 1:
        raise ShardError(f"splits must be at least 1, got {splits}")
    if algorithm not in Algorithms.names():
        raise ShardError(f"unknown splitting algorithm {algorithm!r}; expected one of {', '.join(Algorithms.names())}")
    items = [SimpleNamespace(nodeid=n) for n in (nodeids if nodeids is not None else list(durations))]
    if len(items) < splits:
        raise ShardError(f"{len(items)} test(s) cannot fill {splits} shards")
    groups = Algorithms[algorithm].value(splits, items, durations)  # type: ignore[arg-type]
    return Balance(tuple(float(g.duration) for g in groups), tuple(len(g.selected) for g in groups))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.shards", description=__doc__.splitlines()[0])
    parser.add_argument("--splits", type=int, default=4, metavar="N", help="CI machines to split across (default: 4)")
    parser.add_argument("--durations-path", type=Path, default=DEFAULT_DURATIONS, metavar="PATH",
                        help=f"pytest-split's durations file (default: {DEFAULT_DURATIONS})")
    parser.add_argument("--prefix", default="suites/", help="only tests whose node id starts with this "
                                                            "(default: suites/)")
    parser.add_argument("--algorithm", default=DEFAULT_ALGORITHM,
                        help=f"pytest-split's --splitting-algorithm (default: {DEFAULT_ALGORITHM})")
    parser.add_argument("--max-ratio", type=float, default=None, metavar="X",
                        help="exit 1 when the largest shard is more than X times the mean (default: only print)")
    args = parser.parse_args(argv)
    try:
        durations = load_durations(args.durations_path, args.prefix)
        result = balance(durations, args.splits, args.algorithm)
    except OptbenchError as exc:
        print(f"optbench shards: {exc}", file=sys.stderr)
        return 2
    for i, (seconds, tests) in enumerate(zip(result.shards, result.tests, strict=True), start=1):
        print(f"shard {i}/{args.splits}: {tests} tests, {seconds:.1f} s recorded")
    print(f"{len(durations)} tests, {sum(result.shards):.1f} s recorded; mean shard {result.mean:.1f} s, largest "
          f"{max(result.shards):.1f} s = {result.ratio:.3f} x the mean ({args.algorithm}, {args.durations_path})")
    if args.max_ratio is not None and result.ratio > args.max_ratio:
        print(f"optbench shards: the largest shard is {result.ratio:.3f} x the mean, above --max-ratio "
              f"{args.max_ratio}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
