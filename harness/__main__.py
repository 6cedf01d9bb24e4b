"""``python -m harness <command> …``: an alias of the ``optbench`` command (harness/cli.py)."""

from __future__ import annotations

import sys

from harness.cli import main

if __name__ == "__main__":
    sys.exit(main(prog="python -m harness"))
