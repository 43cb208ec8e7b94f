"""Copies of drkit's state: a consistent SQLite file of any backend's rows (what the
state backup stores in the repository), its check, and loading such a file back into a
state (what a state restore does)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from drkit.errors import InputError
from drkit.state.store import _SCHEMA, StateStore, is_state_url

#: the tables a state copy carries; the leases too, so that fencing tokens keep growing
#: after a restore (a lease in a copy has long expired: the first agent takes it)
_COPIED = {
    "events": "id, at, kind, component, message, data",
    "verifications": "id, at, component, snapshot, ok, duration_s, details",
    "drills": "id, at, scenario, verdict, journal",
    "leases": "name, holder, token, expires",
}


def copy_state(source: Path | str, dest: Path) -> int:
    """A consistent copy of the state database at ``source`` into a new file ``dest``,
    through SQLite's online backup API (writers may keep writing meanwhile), or, for a
    ``postgresql://`` state, its rows read in one transaction into a new SQLite file;
    returns the number of events copied. ``InputError`` when ``source`` is no state
    database."""
    if is_state_url(source):
        return _export(StateStore(source), dest)
    source = Path(source)
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


def _export(store: StateStore, dest: Path) -> int:
    try:
        with store._tx() as db:  # one snapshot of all three tables
            if store._SNAPSHOT:
                db.execute(store._SNAPSHOT)
            rows = {
                table: list(db.execute(f"SELECT {cols} FROM {table}").fetchall())
                for table, cols in _COPIED.items()
            }
    finally:
        store.close()
    out = sqlite3.connect(str(dest))
    try:
        out.executescript(_SCHEMA)
        for table, cols in _COPIED.items():
            marks = ",".join("?" * len(cols.split(",")))
            out.executemany(f"INSERT INTO {table}({cols}) VALUES ({marks})", rows[table])
        out.commit()
        return check_state_file(out, dest)
    finally:
        out.close()


def load_state(dest: StateStore, source: Path, *, replace: bool) -> int:
    """Fill the state ``dest`` (any backend) with the rows of the SQLite state file
    ``source``, in one transaction; the number of events loaded. ``InputError`` when
    ``dest`` holds history already and not ``replace`` (then nothing is written). The
    lease rows of ``source`` are added only where ``dest`` has none (a live lease's
    token never goes back)."""
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    try:
        events = check_state_file(src, source)
        rows = {
            table: list(src.execute(f"SELECT {cols} FROM {table}").fetchall())
            for table, cols in _COPIED.items()
        }
    finally:
        src.close()
    with dest._tx() as db:
        held = sum(int(db.execute(f"SELECT count(*) FROM {t}").fetchone()[0]) for t in _HISTORY)
        if held and not replace:
            raise InputError(
                f"the state {dest.where} already holds {held} record(s): not overwritten",
                hint="pass --force to replace it",
            )
        for table in _HISTORY:
            db.execute(f"DELETE FROM {table}")
        for table, cols in _COPIED.items():
            marks = ",".join("?" * len(cols.split(",")))
            conflict = " ON CONFLICT(name) DO NOTHING" if table == "leases" else ""
            for row in rows[table]:
                db.execute(f"INSERT INTO {table}({cols}) VALUES ({marks}){conflict}", row)
        for statement in dest._RESEQUENCE:
            db.execute(statement)
    return events


#: the tables of history (what a restore replaces)
_HISTORY = ("events", "verifications", "drills")


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
