"""drkit's own state: events, restore verifications and drill journals, in SQLite.

The state is a cache of facts that also live elsewhere or can be rebuilt (the repository
holds verification records; drill journals are JSON files); losing it loses history,
never data. It is backed up into the repository like any other component.

Contracts:

- every ``record_*`` commits before returning (a crash after it loses nothing);
- readers never see a half-written row (SQLite transactions, WAL mode);
- several processes may write at once (SQLite busy timeout; each write is short).
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from drkit.errors import InputError

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
    db = sqlite3.connect(str(path), timeout=30.0, check_same_thread=False, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.executescript(schema)
    return db


def default_state_path(plan_path: Path | None = None) -> Path:
    """``$DRKIT_STATE``, else ``.drkit/state.db`` beside the plan (or the working dir)."""
    base = plan_path.parent if plan_path is not None else Path.cwd()
    return _env_state_path() or base / DEFAULT_STATE_DIR / "state.db"


def plan_state_path(plan: Plan) -> Path:
    """``$DRKIT_STATE``, else ``<state_dir>/state.db`` (``state_dir`` relative to the plan)."""
    return _env_state_path() or plan.resolve_path(plan.state_dir) / "state.db"


def copy_state(source: Path, dest: Path) -> int:
    """A consistent copy of the state database at ``source`` into a new file ``dest``,
    through SQLite's online backup API (writers may keep writing meanwhile); returns the
    number of events copied. ``InputError`` when ``source`` is no state database."""
    if not source.is_file():
        raise InputError(
            f"there is no drkit state at {source}",
            hint="set DRKIT_STATE, or run a drkit command that records state first",
        )
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30.0)
    try:
        dst = sqlite3.connect(str(dest))
        try:
            src.backup(dst)
            dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
            return check_state_file(dst, source)
        finally:
            dst.close()
    except sqlite3.DatabaseError as exc:
        raise InputError(
            f"{source} is not a readable drkit state database: {exc}",
            hint="point DRKIT_STATE at drkit's state.db",
        ) from exc
    finally:
        src.close()


def check_state_file(db: sqlite3.Connection, where: Path | str) -> int:
    """``PRAGMA integrity_check`` plus drkit's tables; the number of events."""
    ok = db.execute("PRAGMA integrity_check").fetchone()
    if not ok or ok[0] != "ok":
        raise InputError(f"{where}: the state database is corrupt ({ok[0] if ok else '?'})")
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    missing = {"events", "verifications", "drills"} - tables
    if missing:
        raise InputError(f"{where}: not a drkit state database (no {', '.join(sorted(missing))})")
    return int(db.execute("SELECT count(*) FROM events").fetchone()[0])


def _env_state_path() -> Path | None:
    env = os.environ.get("DRKIT_STATE")
    return Path(env) if env else None


class StateStore:
    """A small SQLite database of events, verifications and drill journals."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path) if str(path) != ":memory:" else None
        self._lock = threading.Lock()
        self._db = open_database(path, _SCHEMA, what="state")

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # --- events --------------------------------------------------------------------------

    def record_event(
        self,
        kind: str,
        component: str,
        message: str,
        data: Mapping[str, Any] | None = None,
        *,
        at: float | None = None,
    ) -> int:
        """Append one event (``gateway.failover``, ``drill.step``...); returns its id."""
        with self._tx() as db:
            cur = db.execute(
                "INSERT INTO events(at, kind, component, message, data) VALUES (?,?,?,?,?)",
                (
                    at if at is not None else time.time(),
                    kind,
                    component,
                    message,
                    json.dumps(dict(data or {}), default=str),
                ),
            )
            return int(cur.lastrowid or 0)

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
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
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
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY at", args).fetchall()
        return [Verification(r[0], r[1], r[2], bool(r[3]), r[4], json.loads(r[5])) for r in rows]

    def last_verification(self, component: str, *, ok_only: bool = True) -> Verification | None:
        found = [v for v in self.verifications(component) if v.ok or not ok_only]
        return found[-1] if found else None

    # --- drills --------------------------------------------------------------------------

    def record_drill(self, journal: Mapping[str, Any]) -> None:
        """Store a drill journal (``id``, ``scenario``, ``started_at``, ``verdict`` required)."""
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO drills(id, at, scenario, verdict, journal)"
                " VALUES (?,?,?,?,?)",
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
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY at", args).fetchall()
        return [DrillRecord(r[0], r[1], r[2], r[3], json.loads(r[4])) for r in rows]
