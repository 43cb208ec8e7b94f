"""drkit's state in PostgreSQL (``postgresql://...``): one state shared by several agents.

The same tables, SQL and contracts as the SQLite store (:mod:`drkit.state.store`); what
differs is here: column types, ``%s`` placeholders, the clock (``clock_timestamp()``), the
row lock that makes a fenced write and a lease takeover exclusive (``FOR UPDATE``), and
the connection, which is reopened after it broke (a restarted server, a cut network): the
operation that found it broken raises :class:`~drkit.state.store.StateUnreachable`
(retryable); the next one reconnects.

The URL may carry a password: it is never part of an error message or a repr.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from drkit.state.store import StateNotReachable, StateStore, StateUnreachable

_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS events (
        id BIGSERIAL PRIMARY KEY,
        at DOUBLE PRECISION NOT NULL,
        kind TEXT NOT NULL,
        component TEXT NOT NULL,
        message TEXT NOT NULL,
        data TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS events_kind_at ON events(kind, at)",
    """CREATE TABLE IF NOT EXISTS verifications (
        id BIGSERIAL PRIMARY KEY,
        at DOUBLE PRECISION NOT NULL,
        component TEXT NOT NULL,
        snapshot TEXT NOT NULL,
        ok INTEGER NOT NULL,
        duration_s DOUBLE PRECISION NOT NULL,
        details TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS verifications_component ON verifications(component, at)",
    """CREATE TABLE IF NOT EXISTS drills (
        id TEXT PRIMARY KEY,
        at DOUBLE PRECISION NOT NULL,
        scenario TEXT NOT NULL,
        verdict TEXT NOT NULL,
        journal TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS drills_scenario ON drills(scenario, at)",
    """CREATE TABLE IF NOT EXISTS leases (
        name TEXT PRIMARY KEY,
        holder TEXT NOT NULL,
        token BIGINT NOT NULL,
        expires DOUBLE PRECISION NOT NULL
    )""",
]
#: serialises concurrent schema creation (CREATE ... IF NOT EXISTS races in PostgreSQL)
_SCHEMA_LOCK = 7_352_841


def masked_url(url: str) -> str:
    """``url`` without its password (for messages)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host += f":{parts.port}"
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit(parts._replace(netloc=user + host))


class _Db:
    """A psycopg connection that speaks ``?`` placeholders, like sqlite3."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def execute(self, sql: str, args: Sequence[Any] = ()) -> Any:
        return self.conn.execute(sql.replace("?", "%s"), tuple(args))


class PgStateStore(StateStore):
    """The state in PostgreSQL; opened by ``StateStore("postgresql://...")``."""

    _NOW = "(EXTRACT(EPOCH FROM clock_timestamp())::double precision)"
    _LOCK_ROW = " FOR UPDATE"
    _SNAPSHOT = "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"
    _RESEQUENCE = tuple(
        f"SELECT setval(pg_get_serial_sequence('{t}', 'id'), COALESCE(MAX(id), 0) + 1, false)"
        f" FROM {t}"
        for t in ("events", "verifications")
    )

    def __init__(self, location: Path | str) -> None:
        try:
            import psycopg
        except ModuleNotFoundError as exc:
            from drkit.extras import MissingExtra

            raise MissingExtra("postgres", "psycopg", "a postgresql:// state") from exc
        self._psycopg = psycopg
        self.path = None
        self.url = str(location)
        self._where = masked_url(self.url)
        self._lock = threading.Lock()
        self._conn: Any = None
        try:
            with self._tx() as db:
                db.execute("SELECT pg_advisory_xact_lock(?)", (_SCHEMA_LOCK,))
                for statement in _SCHEMA:
                    db.execute(statement)
        except StateUnreachable as exc:
            raise StateNotReachable(
                f"cannot reach the state database {self.where}: "
                + exc.message.removeprefix(f"state database {self.where}: "),
                hint="check state.url / DRKIT_STATE and that PostgreSQL is up",
            ) from None

    def __repr__(self) -> str:
        return f"PgStateStore({self.where!r})"

    @property
    def where(self) -> str:
        return self._where

    def _connection(self) -> Any:
        if self._conn is None or self._conn.closed:
            try:
                # a cut network must fail a call within seconds, not hang the agent's loop:
                # unacknowledged data (tcp_user_timeout), an idle dead peer (keepalives),
                # a server that accepts and then stalls (statement_timeout)
                self._conn = self._psycopg.connect(
                    self.url,
                    autocommit=True,
                    connect_timeout=5,
                    keepalives_idle=5,
                    keepalives_interval=2,
                    keepalives_count=3,
                    tcp_user_timeout=10_000,
                    options="-c statement_timeout=10000",
                )
            except self._psycopg.Error as exc:
                self._conn = None
                raise StateUnreachable(f"state database {self.where}: {_first_line(exc)}") from None
        return self._conn

    def _broken(self, exc: Exception) -> StateUnreachable:
        if self._conn is not None:
            self._conn.close()
        self._conn = None
        return StateUnreachable(f"state database {self.where}: {_first_line(exc)}")

    @contextmanager
    def _tx(self) -> Iterator[Any]:
        with self._lock:
            conn = self._connection()
            try:
                with conn.transaction():
                    yield _Db(conn)
            except self._psycopg.OperationalError as exc:
                raise self._broken(exc) from None

    def _read(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            conn = self._connection()
            try:
                return list(_Db(conn).execute(sql, args).fetchall())
            except self._psycopg.OperationalError as exc:
                raise self._broken(exc) from None

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
