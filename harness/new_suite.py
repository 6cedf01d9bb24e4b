"""``python -m harness.new_suite NAME`` (``optbench new-suite NAME``): write ``suites/test_NAME.py`` for a suite
a technique module registers, and say how to accept its baseline and regenerate the docs.

The suite's presets come from ``register_preset(NAME, ...)`` in its technique's module: a module in
``harness/techniques/`` is found by importing the package; a module elsewhere is named with ``--module`` (a dotted
name or a path to a ``.py`` file, e.g. the ``conftest.py`` that registers it for pytest too). The file written is
the three lines every suite is; an existing file, an unknown suite or a bad name is refused with one line.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

from harness.errors import OptbenchError

NAME = re.compile(r"[a-z][a-z0-9_]*")

TEMPLATE = '''"""{title} suite: the presets registered as {name!r}, on every model they apply to."""

import pytest

pytestmark = pytest.mark.optbench_suite("{name}")


def test_{name}(optbench, optbench_case, benchmark):
    optbench.run(optbench_case, benchmark)
'''


class NewSuiteError(OptbenchError):
    """The suite file cannot be written: the message says what was wrong and what was expected."""


def check_name(name: str) -> str:
    if not NAME.fullmatch(name):
        raise NewSuiteError(f"bad suite name {name!r}: expected lowercase letters, digits and _, starting with a "
                            "letter (it names suites/test_NAME.py and the baseline results/baselines/NAME.json)")
    return name


def import_module(where: str) -> ModuleType:
    """Import ``where``, a dotted module name or a path to a ``.py`` file, so that it registers its techniques.
    A file already imported (a module of harness/techniques/) is not run a second time."""
    try:
        if not where.endswith(".py"):
            return importlib.import_module(where)
        path = Path(where).resolve()
        if not path.is_file():
            raise NewSuiteError(f"--module {where}: no such file; expected a .py file or a dotted module name")
        for module in list(sys.modules.values()):
            if getattr(module, "__file__", None) and Path(module.__file__).resolve() == path:
                return module
        spec = importlib.util.spec_from_file_location(f"_optbench_suite_{path.stem}", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.path.insert(0, str(path.parent))  # its own imports resolve as they do under pytest's rootdir
        try:
            spec.loader.exec_module(module)
        finally:
            sys.path.remove(str(path.parent))
        return module
    except OptbenchError:
        raise
    except ModuleNotFoundError as exc:
        raise NewSuiteError(f"--module {where}: cannot import it ({exc}); expected a dotted module name on the "
                            "path or a path to a .py file") from None
    except Exception as exc:  # the user's module failed: one line, not a traceback
        detail = " ".join(str(exc).split())
        raise NewSuiteError(f"--module {where}: importing it failed: {type(exc).__name__}: {detail}") from None


def suite_presets(name: str, modules: list[str]) -> list[str]:
    """The preset names of suite ``name`` once the techniques package and ``modules`` are imported."""
    import harness.techniques  # noqa: F401 - registers every technique module of the package
    from harness.techniques.base import PRESETS

    for where in modules:
        import_module(where)
    if name not in PRESETS:
        known = ", ".join(sorted(PRESETS)) or "(none)"
        raise NewSuiteError(f"unknown suite {name!r}: no technique registers presets for it "
                            f"(register_preset({name!r}, MyConfig(...)) in its module; a module outside "
                            f"harness/techniques/ is named with --module); expected one of: {known}")
    return PRESETS[name].names()


def write_suite(name: str, suites_dir: Path) -> Path:
    path = suites_dir / f"test_{name}.py"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with path.open("x", encoding="utf-8") as out:  # never over a file already there
            out.write(TEMPLATE.format(name=name, title=name.replace("_", " ").capitalize()))
    except FileExistsError:
        raise NewSuiteError(f"{path} already exists: remove it first or pick another suite name") from None
    return path


def next_steps(name: str, path: Path, presets: list[str], baseline_dir: str) -> list[str]:
    shown = ", ".join(presets[:6]) + (f" and {len(presets) - 6} more" if len(presets) > 6 else "")
    steps = [
        (f"pytest {path} --optbench-update-baselines", f"measure it and accept {baseline_dir}/{name}.json"),
        ("python -m harness.accept results/run-*.json", "or accept the median of several runs' records"),
        ("python -m harness.docs", "regenerate docs/results.md from the baselines"),
        (f"pytest {path}", "gate it against the accepted baseline"),
    ]
    width = max(len(command) for command, _ in steps)
    return [f"wrote {path}: suite {name!r}, presets {shown} (each on every model it applies to)", "next:",
            *(f"  {command.ljust(width)}  # {why}" for command, why in steps)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="optbench new-suite",
        description="Write suites/test_NAME.py for a suite that a technique module registers (register_preset(NAME, "
                    "...)), then say how to accept its baseline and regenerate the docs.")
    parser.add_argument("name", metavar="NAME", help="the suite's name, as in register_preset(NAME, ...)")
    parser.add_argument("--module", action="append", default=[], metavar="MODULE",
                        help="a module outside harness/techniques/ that registers the suite: a dotted name or a "
                             "path to a .py file (repeatable; default: none)")
    parser.add_argument("--suites-dir", type=Path, default=Path("suites"), metavar="DIR",
                        help="where suite files live (default: suites)")
    parser.add_argument("--baseline-dir", default="results/baselines", metavar="DIR",
                        help="where the baseline will be accepted, for the message (default: results/baselines)")
    args = parser.parse_args(argv)
    try:
        name = check_name(args.name)
        presets = suite_presets(name, args.module)
        path = write_suite(name, args.suites_dir)
    except OptbenchError as exc:
        print(f"new-suite: {exc}", file=sys.stderr)
        return 2
    print("\n".join(next_steps(name, path, presets, args.baseline_dir)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
