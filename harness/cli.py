"""``optbench <command> …``: the harness's commands outside pytest, under one name and one ``--help``.

Each command lives in its own module with a ``main(argv) -> int``; the ``python -m harness.<module>`` forms and
``python -m harness <command>`` stay as aliases. Options are spelled alike across commands: ``--models``,
``--suites``, ``--cache-dir``, ``--baseline-dir``, ``-o/--output``.
"""

from __future__ import annotations

import dataclasses
import importlib
import sys


@dataclasses.dataclass(frozen=True)
class Command:
    module: str  # has main(argv: list[str]) -> int
    summary: str
    prefix: tuple[str, ...] = ()  # arguments put before the user's (a module whose main has subcommands)


COMMANDS: dict[str, Command] = {
    "report": Command("harness.report.__main__", "write the HTML report (and a history entry) from run records"),
    "accept": Command("harness.accept", "accept the baselines from the median of several run records"),
    "diff": Command("harness.baselines", "compare two baseline files, per case and figure: old -> new",
                    ("diff",)),
    "count": Command("harness.count", "the work gate: instructions per inference counted under Valgrind"),
    "search": Command("harness.search.cli", "hyperparameter studies and the accuracy-aware int8 search"),
    "gatebench": Command("harness.gatebench", "measure the gate's false-alarm and detection rates"),
    "docs": Command("harness.docs", "regenerate docs/results.md from the baselines"),
    "new-suite": Command("harness.new_suite", "write suites/test_NAME.py for a suite a technique module registers"),
}


def usage(prog: str = "optbench") -> str:
    width = max(len(name) for name in COMMANDS)
    lines = [f"usage: {prog} <command> [options]   ({prog} <command> --help for its options)", "", "commands:"]
    lines += [f"  {name.ljust(width)}  {cmd.summary}" for name, cmd in COMMANDS.items()]
    lines += ["", "The benchmark itself runs under pytest: `pytest` (see README.md)."]
    return "\n".join(lines)


def main(argv: list[str] | None = None, prog: str = "optbench") -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(usage(prog))
        return 0 if args else 2
    name, rest = args[0], args[1:]
    command = COMMANDS.get(name)
    if command is None:
        print(f"{prog}: unknown command {name!r}; expected one of: {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    return int(importlib.import_module(command.module).main([*command.prefix, *rest]))


if __name__ == "__main__":
    sys.exit(main())
