"""``optbench`` / ``python -m harness``: one command name, every subcommand listed, arguments passed through."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from harness import cli


def test_help_lists_every_command(capsys):
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in ("report", "accept", "diff", "count", "search", "gatebench", "docs"):
        assert f"  {name} " in out


def test_no_command_prints_the_usage_and_is_a_usage_error(capsys):
    assert cli.main([]) == 2
    assert "usage: optbench <command>" in capsys.readouterr().out


def test_an_unknown_command_names_the_valid_ones(capsys):
    assert cli.main(["nosuch"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == ("optbench: unknown command 'nosuch'; expected one of: "
                           + ", ".join(cli.COMMANDS))


def test_a_command_gets_the_remaining_arguments_after_its_prefix(monkeypatch):
    seen = []
    monkeypatch.setitem(cli.COMMANDS, "probe", cli.Command("tests.test_main", "x", ("sub",)))
    monkeypatch.setattr("tests.test_main.main", lambda argv: seen.append(argv) or 0, raising=False)
    assert cli.main(["probe", "--x", "1"]) == 0 and seen == [["sub", "--x", "1"]]


def test_every_command_module_has_a_main():
    import importlib

    for name, command in cli.COMMANDS.items():
        assert callable(getattr(importlib.import_module(command.module), "main", None)), name


@pytest.mark.parametrize("argv", [["optbench"], [sys.executable, "-m", "harness"]])
def test_the_console_script_and_the_module_alias_dispatch(argv):
    if argv[0] == "optbench":
        found = shutil.which("optbench", path=str(__import__("pathlib").Path(sys.executable).parent))
        if found is None:
            pytest.skip("optbench console script not installed in this venv (pip install -e .)")
        argv = [found]
    proc = subprocess.run([*argv, "diff", "--help"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "old" in proc.stdout and "new" in proc.stdout
