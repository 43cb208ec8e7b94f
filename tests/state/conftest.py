"""Every state-store test runs against both backends: SQLite and a real PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tests.pgstate import fresh_database, pg_server

from drkit.state.store import StateStore

__all__ = ["pg_server"]


@pytest.fixture(params=["sqlite", "postgres"])
def new_location(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[str], str]:
    """``name -> location``: a SQLite file under tmp_path, or a fresh PostgreSQL database
    (the same name gives the same database within a test)."""
    made: dict[str, str] = {}

    def make(name: str = "s.db") -> str:
        if name not in made:
            if request.param == "sqlite":
                made[name] = str(tmp_path / name)
            else:
                made[name] = fresh_database(request.getfixturevalue("pg_server"))
        return made[name]

    return make


@pytest.fixture
def store(new_location: Callable[[str], str]) -> Iterator[StateStore]:
    opened = StateStore(new_location("s.db"))
    yield opened
    opened.close()
