"""``--optbench-optuna-storage``: a malformed or unreachable URL stops the run with a usage error naming it."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize(("url", "expected"), [
    ("nope://", "is not a usable database URL"),
    ("postgresql+psycopg://x@127.0.0.1:9/db?connect_timeout=2", "is unreachable"),
])
def test_a_bad_storage_url_is_a_usage_error(pytester, url, expected):
    pytester.makepyfile(test_x="def test_x():\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", f"--optbench-optuna-storage={url}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert f"--optbench-optuna-storage: optuna storage '{url}' {expected}" in err


def test_the_options_are_listed_in_help(pytester):
    out = pytester.runpytest_subprocess("--help").stdout.str()
    assert "--optbench-optuna-storage=URL" in out and "--optbench-optuna-study=NAME" in out
