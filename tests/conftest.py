"""Fixtures for the whole suite.

Every test starts from an environment without drkit's or AWS's variables, so that a
developer's ``DRKIT_REPO``/``DRKIT_PASSWORD``/``AWS_PROFILE`` can neither make a test pass
nor point one at real data. Kept: the suite's own configuration — ``DRKIT_TEST_*`` (set by
fixtures, or the cloud tests' URLs), ``DRKIT_FULL_CAMPAIGN`` — and, when a cloud test run is
configured (``DRKIT_TEST_S3_URL``), the AWS credentials it runs with.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

#: the suite's own switches, not configuration of the code under test
SUITE_VARIABLES = ("DRKIT_TEST_", "DRKIT_FULL_CAMPAIGN")


def cleared_variables(environ: dict[str, str] | os._Environ[str]) -> list[str]:
    """The variables of ``environ`` that a test must not see."""
    keep_aws = bool(environ.get("DRKIT_TEST_S3_URL"))
    return [
        name
        for name in environ
        if (name.startswith("DRKIT_") and not name.startswith(SUITE_VARIABLES))
        or (name.startswith("AWS_") and not keep_aws)
    ]


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in cleared_variables(os.environ):
        monkeypatch.delenv(name)


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """What a CLI test on a file:// repository needs: a password, the fast KDF, and a
    state database of its own in ``tmp_path``."""
    monkeypatch.setenv("DRKIT_PASSWORD", "pw")
    monkeypatch.setenv("DRKIT_KDF", "fast")
    monkeypatch.setenv("DRKIT_STATE", str(tmp_path / "state.db"))
