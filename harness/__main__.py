"""``python -m harness <command> …``: the harness's commands outside pytest, each in its own module."""

from __future__ import annotations

import importlib
import sys

COMMANDS = {"search": "harness.search.cli"}  # command -> module with main(argv) -> int


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in COMMANDS:
        print(f"usage: python -m harness {{{','.join(COMMANDS)}}} ...", file=sys.stderr)
        return 2
    return int(importlib.import_module(COMMANDS[args[0]]).main(args[1:]))


if __name__ == "__main__":
    sys.exit(main())
