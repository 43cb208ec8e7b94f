"""drkit's own state: events, restore verifications and drill journals, in SQLite
(the embedded default) or PostgreSQL (``postgresql://``, shared by several agents:
:mod:`drkit.state.postgres`).

The state is a cache of facts that also live elsewhere or can be rebuilt (the repository
holds verification records; drill journals are JSON files); losing it loses history,
never data. It is backed up into the repository like any other component.

Contracts:

- every ``record_*`` commits before returning (a crash after it loses nothing);
- readers never see a half-written row (SQLite transactions, WAL mode);
- several processes may write at once (SQLite busy timeout; each write is short);
- a *lease* (:meth:`StateStore.acquire_lease`) is held by one holder at a time, with a
  fencing token that grows with every change of holder; a write given ``fence=`` commits
  only while that token is still the lease's (:class:`Fenced` otherwise), so a deposed
  holder's late write is rejected. Lease times are the database's clock, not the caller's.

Both backends run the same SQL (standard enough for both: ``ON CONFLICT``, ``RETURNING``);
what differs — the schema's types, placeholders, the clock, row locks — is in the
``_`` hooks a backend overrides.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from drkit.errors import DrkitError, InputError

if TYPE_CHECKING:
    from drkit.plan.models import Plan

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    kind TEXT NOT NULL,
    component TEXT NOT NULL,
    message TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_kind_at ON events(kind, at);
CREATE TABLE IF NOT EXISTS verifications (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    component TEXT NOT NULL,
    snapshot TEXT NOT NULL,
    ok INTEGER NOT NULL,
    duration_s REAL NOT NULL,
    details TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS verifications_component ON verifications(component, at);
CREATE TABLE IF NOT EXISTS drills (
    id TEXT PRIMARY KEY,
    at REAL NOT NULL,
    scenario TEXT NOT NULL,
    verdict TEXT NOT NULL,
    journal TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS drills_scenario ON drills(scenario, at);
CREATE TABLE IF NOT EXISTS leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    token INTEGER NOT NULL,
    expires REAL NOT NULL
);
"""


@dataclass(frozen=True, slots=True)
class Event:
    """One fact (``gateway.failover``, ``drill.step``...): the one event type of drkit.

    ``id`` is the row id in the state store; events kept elsewhere (the gateway's JSONL
    file, a memory sink) number theirs by position, from 1.
    """

    id: int
    at: float
    kind: str
    component: str
    message: str
    data: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": self.at,
            "kind": self.kind,
            "component": self.component,
            "message": self.message,
            "data": self.data,
        }


@dataclass(frozen=True, slots=True)
class Verification:
    at: float
    component: str
    snapshot: str
    ok: bool
    duration_s: float
    details: dict[str, Any]


@dataclass(frozen=True, slots=True)
class DrillRecord:
    id: str
    at: float
    scenario: str
    verdict: str
    journal: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Lease:
    """Who holds the lease ``name`` until ``expires`` (the database's epoch seconds), and
    the fencing token of that holding (larger for every new holder)."""

    name: str
    holder: str
    token: int
    expires: float


@dataclass(frozen=True, slots=True)
class Fence:
    """A write condition: commit only while lease ``name`` still has ``token``."""

    name: str
    token: int


class Fenced(DrkitError):
    """A write under a fencing token that is no longer the lease's: another holder took
    the lease over, so this (late) write is rejected and nothing is written."""


class StateUnreachable(DrkitError):
    """The state database cannot be reached right now (retryable)."""

    retryable = True


class StateNotReachable(InputError):
    """A state URL that cannot be reached when it is opened: bad input for a command
    (exit 2, nothing started), and retryable for a job that opens it mid-run."""

    retryable = True


def is_state_url(location: object) -> bool:
    """Whether ``location`` names a PostgreSQL state (``postgresql://...``)."""
    return isinstance(location, str) and location.startswith(("postgresql://", "postgres://"))


def describe_location(location: Path | str) -> str:
    """``location`` for messages: a URL without its password."""
    if is_state_url(location):
        from drkit.state.postgres import masked_url

        return masked_url(str(location))
    return str(location)


#: The repository component of drkit's own state snapshots (``drkit state backup``).
STATE_COMPONENT = "drkit-state"

#: Where the state lives unless ``DRKIT_STATE`` or an explicit path says otherwise.
DEFAULT_STATE_DIR = ".drkit"


def open_database(path: Path | str, schema: str, *, what: str) -> sqlite3.Connection:
    """One of drkit's SQLite files (WAL, autocommit, shared across threads) with its
    schema; ``InputError`` naming ``what`` when its directory cannot be created."""
    if str(path) != ":memory:":
        parent = Path(path).parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(
                f"cannot create the {what} directory {parent}: {exc.strerror}",
                hint="set DRKIT_STATE to a writable path",
            ) from exc
    db = sqlite3.connect(
        str(path), timeout=_BUSY_TIMEOUT, check_same_thread=False, isolation_level=None
    )
    deadline = time.monotonic() + _BUSY_TIMEOUT
    while True:
        try:
            _set_up(db, schema)
            return db
        except sqlite3.OperationalError as exc:
            # processes creating one file together race for the WAL switch: SQLite
            # answers "locked" at once there (no busy wait, its deadlock rule)
            if "locked" not in str(exc) or time.monotonic() > deadline:
                db.close()
                raise
            time.sleep(0.02)


#: How long drkit waits for another process's lock on one of its SQLite files.
_BUSY_TIMEOUT = 30.0


def _set_up(db: sqlite3.Connection, schema: str) -> None:
    """WAL (persistent, so set once per file), then the schema (idempotent DDL)."""
    if db.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
        db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.executescript(schema)


def default_state_path(plan_path: Path | None = None) -> Path:
    """``$DRKIT_STATE``, else ``.drkit/state.db`` beside the plan (or the working dir)."""
    base = plan_path.parent if plan_path is not None else Path.cwd()
    return _env_state_path() or base / DEFAULT_STATE_DIR / "state.db"


def plan_state_path(plan: Plan) -> Path:
    """``$DRKIT_STATE``, else ``<state_dir>/state.db`` (``state_dir`` relative to the plan)."""
    return _env_state_path() or plan.resolve_path(plan.state_dir) / "state.db"


def plan_state_location(plan: Plan) -> Path | str:
    """Where this plan's state is: a ``postgresql://`` URL (``$DRKIT_STATE``, else the
    plan's ``state.url``), else the SQLite file of :func:`plan_state_path`."""
    env = os.environ.get("DRKIT_STATE")
    if is_state_url(env):
        return str(env)
    if plan.state is not None and plan.state.url is not None:
        return plan.state.url.reveal()
    return plan_state_path(plan)


def state_location(plan: Plan | None, plan_path: Path | None = None) -> Path | str:
    """Where the state is, with or without a plan: :func:`plan_state_location` of the
    plan, else a ``postgresql://`` ``$DRKIT_STATE``, else :func:`default_state_path`."""
    if plan is not None:
        return plan_state_location(plan)
    env = os.environ.get("DRKIT_STATE")
    return str(env) if is_state_url(env) else default_state_path(plan_path)


def has_state(location: Path | str) -> bool:
    """Whether drkit has recorded anything there yet (a database URL: assumed)."""
    return is_state_url(location) or Path(location).exists()


def _env_state_path() -> Path | None:
    env = os.environ.get("DRKIT_STATE")
    return Path(env) if env and not is_state_url(env) else None


class StateStore:
    """A small database of events, verifications, drill journals and leases.

    ``StateStore(path)`` opens SQLite; ``StateStore("postgresql://...")`` opens the
    PostgreSQL backend (:class:`drkit.state.postgres.PgStateStore`, same contracts).
    """

    path: Path | None

    def __new__(cls, location: Path | str) -> StateStore:
        if cls is StateStore and is_state_url(location):
            from drkit.state.postgres import PgStateStore

            return super().__new__(PgStateStore)
        return super().__new__(cls)

    def __init__(self, location: Path | str) -> None:
        self.path = Path(location) if str(location) != ":memory:" else None
        self._lock = threading.Lock()
        self._db = open_database(location, _SCHEMA, what="state")

    # --- what a backend overrides ----------------------------------------------------------

    #: the database's clock, in epoch seconds, as an SQL expression
    _NOW = "((julianday('now') - 2440587.5) * 86400.0)"
    #: appended to the fence check's SELECT (PostgreSQL: ``FOR UPDATE``; SQLite's
    #: ``BEGIN IMMEDIATE`` already excludes other writers)
    _LOCK_ROW = ""
    #: the first statement of a transaction that must read one snapshot of several tables
    _SNAPSHOT = ""
    #: run after rows with explicit ids were loaded (PostgreSQL: move the id sequences on)
    _RESEQUENCE: tuple[str, ...] = ()

    @property
    def where(self) -> str:
        """This state for messages (a file path, or a URL without its password)."""
        return str(self.path) if self.path is not None else ":memory:"

    @contextmanager
    def _tx(self) -> Iterator[Any]:
        """A write transaction; yields an object with ``execute(sql, args)``."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _read(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return list(self._db.execute(sql, args).fetchall())

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _check_fence(self, db: Any, fence: Fence | None) -> None:
        if fence is None:
            return
        row = db.execute(
            "SELECT holder, token FROM leases WHERE name = ?" + self._LOCK_ROW, (fence.name,)
        ).fetchone()
        if row is None or int(row[1]) != fence.token:
            now = f"held by {row[0]} with token {row[1]}" if row else "released"
            raise Fenced(
                f"write rejected: lease {fence.name!r} token {fence.token} is stale (now {now})"
            )

    # --- leases ----------------------------------------------------------------------------

    def acquire_lease(self, name: str, holder: str, ttl: float) -> Lease | None:
        """Take or renew lease ``name`` for ``ttl`` seconds; ``None`` while another holder
        has it unexpired. The token stays while ``holder`` renews in time and grows by one
        on every other acquisition (a takeover, or a renewal after expiry)."""
        now = self._NOW
        with self._tx() as db:
            row = db.execute(
                "INSERT INTO leases(name, holder, token, expires)"
                f" VALUES (?, ?, 1, {now} + ?)"
                " ON CONFLICT(name) DO UPDATE SET"
                " token = CASE WHEN leases.holder = excluded.holder"
                f" AND leases.expires > {now} THEN leases.token ELSE leases.token + 1 END,"
                " holder = excluded.holder, expires = excluded.expires"
                f" WHERE leases.holder = excluded.holder OR leases.expires <= {now}"
                " RETURNING token, expires",
                (name, holder, float(ttl)),
            ).fetchone()
        return None if row is None else Lease(name, holder, int(row[0]), float(row[1]))

    def release_lease(self, name: str, holder: str, token: int) -> bool:
        """Expire the lease now if ``holder`` still has it with ``token`` (a clean stop:
        another holder need not wait for the TTL); whether it did."""
        with self._tx() as db:
            row = db.execute(
                f"UPDATE leases SET expires = {self._NOW} - 1"
                " WHERE name = ? AND holder = ? AND token = ? RETURNING token",
                (name, holder, token),
            ).fetchone()
        return row is not None

    def lease(self, name: str) -> tuple[Lease | None, float]:
        """The lease ``name`` as stored (expired or not) and the database's time now."""
        rows = self._read(
            f"SELECT holder, token, expires, {self._NOW} FROM leases WHERE name = ?", (name,)
        )
        if not rows:
            return None, float(self._read(f"SELECT {self._NOW}")[0][0])
        holder, token, expires, now = rows[0]
        return Lease(name, holder, int(token), float(expires)), float(now)

    # --- events --------------------------------------------------------------------------

    def record_event(
        self,
        kind: str,
        component: str,
        message: str,
        data: Mapping[str, Any] | None = None,
        *,
        at: float | None = None,
        fence: Fence | None = None,
    ) -> int:
        """Append one event (``gateway.failover``, ``drill.step``...); returns its id.
        With ``fence``: only while that lease token is current, else :class:`Fenced`."""
        with self._tx() as db:
            self._check_fence(db, fence)
            row = db.execute(
                "INSERT INTO events(at, kind, component, message, data) VALUES (?,?,?,?,?)"
                " RETURNING id",
                (
                    at if at is not None else time.time(),
                    kind,
                    component,
                    message,
                    json.dumps(dict(data or {}), default=str),
                ),
            ).fetchone()
            return int(row[0])

    def events(
        self,
        *,
        kind: str | None = None,
        component: str | None = None,
        since: float | None = None,
        limit: int | None = None,
    ) -> list[Event]:
        """Events oldest first; ``kind`` matches exactly or as a prefix ending in ``.``."""
        sql = "SELECT id, at, kind, component, message, data FROM events WHERE 1=1"
        args: list[Any] = []
        if kind is not None:
            if kind.endswith("."):
                sql += " AND kind LIKE ?"
                args.append(kind + "%")
            else:
                sql += " AND kind = ?"
                args.append(kind)
        if component is not None:
            sql += " AND component = ?"
            args.append(component)
        if since is not None:
            sql += " AND at >= ?"
            args.append(since)
        sql += " ORDER BY at, id"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        rows = self._read(sql, args)
        return [Event(r[0], r[1], r[2], r[3], r[4], json.loads(r[5])) for r in rows]

    # --- restore verifications -----------------------------------------------------------

    def record_verification(
        self,
        component: str,
        snapshot: str,
        *,
        ok: bool,
        duration_s: float,
        details: Mapping[str, Any] | None = None,
        at: float | None = None,
    ) -> None:
        """Record a restore test; ``duration_s`` is the component's achieved RTO."""
        with self._tx() as db:
            db.execute(
                "INSERT INTO verifications(at, component, snapshot, ok, duration_s, details)"
                " VALUES (?,?,?,?,?,?)",
                (
                    at if at is not None else time.time(),
                    component,
                    snapshot,
                    int(ok),
                    duration_s,
                    json.dumps(dict(details or {}), default=str),
                ),
            )

    def verifications(self, component: str | None = None) -> list[Verification]:
        sql = "SELECT at, component, snapshot, ok, duration_s, details FROM verifications"
        args: list[Any] = []
        if component is not None:
            sql += " WHERE component = ?"
            args.append(component)
        rows = self._read(sql + " ORDER BY at, id", args)
        return [Verification(r[0], r[1], r[2], bool(r[3]), r[4], json.loads(r[5])) for r in rows]

    def last_verification(self, component: str, *, ok_only: bool = True) -> Verification | None:
        found = [v for v in self.verifications(component) if v.ok or not ok_only]
        return found[-1] if found else None

    # --- drills --------------------------------------------------------------------------

    def record_drill(self, journal: Mapping[str, Any]) -> None:
        """Store a drill journal (``id``, ``scenario``, ``started_at``, ``verdict`` required)."""
        with self._tx() as db:
            db.execute(
                "INSERT INTO drills(id, at, scenario, verdict, journal) VALUES (?,?,?,?,?)"
                " ON CONFLICT(id) DO UPDATE SET at = excluded.at, scenario = excluded.scenario,"
                " verdict = excluded.verdict, journal = excluded.journal",
                (
                    journal["id"],
                    float(journal["started_at"]),
                    journal["scenario"],
                    journal["verdict"],
                    json.dumps(dict(journal), default=str),
                ),
            )

    def drills(self, scenario: str | None = None) -> list[DrillRecord]:
        sql = "SELECT id, at, scenario, verdict, journal FROM drills"
        args: list[Any] = []
        if scenario is not None:
            sql += " WHERE scenario = ?"
            args.append(scenario)
        rows = self._read(sql + " ORDER BY at, id", args)
        return [DrillRecord(r[0], r[1], r[2], r[3], json.loads(r[4])) for r in rows]
