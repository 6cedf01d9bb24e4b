"""``python -m harness``: dispatches to a command's module and says the usage otherwise."""

from __future__ import annotations

import harness.__main__ as entry


def test_an_unknown_command_prints_the_usage(capsys):
    assert entry.main(["nosuch"]) == 2
    assert "usage: python -m harness {search" in capsys.readouterr().err


def test_a_command_gets_the_remaining_arguments(monkeypatch):
    seen = []
    monkeypatch.setitem(entry.COMMANDS, "probe", "tests.test_main")
    monkeypatch.setattr("tests.test_main.main", lambda argv: seen.append(argv) or 0, raising=False)
    assert entry.main(["probe", "--x", "1"]) == 0 and seen == [["--x", "1"]]
