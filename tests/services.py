"""What a test does when a system service it needs (a database server, a browser) is missing here."""

from __future__ import annotations

import os

import pytest


def unavailable(service: str, reason: str, installer: str) -> None:
    """Skip with the reason on a developer's machine; fail under CI (``CI`` set), which must provide the service.

    ``installer`` says what provides it (".ci/run installs Debian's chromium package")."""
    if os.environ.get("CI"):
        pytest.fail(f"{service} is required in CI but {reason}; {installer}")
    pytest.skip(f"no {service} here: {reason}")
