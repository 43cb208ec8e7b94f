"""The sync state of one warm standby: what the standby holds, and what is on its way.

A small SQLite file per standby (``<state_dir>/standby/COMPONENT.sqlite``):

``records``  ``(collection, id, hash)``: the source's record hash (BLAKE3-128, the one the
             snapshots' index holds) of every record written to the standby.
``spool``    the changes of the current pass not yet applied: Arrow IPC batches of
             changed records (with a ``_hash`` column) and JSON lists of deleted ids, in
             order. A pass reads the source into the spool, then applies it chunk by
             chunk; each chunk's ledger update and its removal from the spool are one
             transaction after the standby took it, so a killed sync re-applies at most
             one chunk (upserts and deletes are idempotent: no duplicates, no misses).
``meta``     per collection: when the last fully applied pass started (``synced_as_of``:
             every change older than that is on the standby), the pass in progress, the
             ids a count-check source missed once; the standby URL; promotion.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa

from drkit.state.store import open_database

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records(
    collection TEXT NOT NULL, id TEXT NOT NULL, hash BLOB NOT NULL,
    PRIMARY KEY (collection, id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS spool(
    seq INTEGER PRIMARY KEY AUTOINCREMENT, collection TEXT NOT NULL,
    kind TEXT NOT NULL, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


def ledger_file(state_dir: Path, component: str) -> Path:
    """Where the sync state of ``component``'s standby lives."""
    return state_dir / "standby" / f"{component}.sqlite"


def encode_batch(batch: pa.RecordBatch) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema) as writer:
        writer.write_batch(batch)
    return bytes(sink.getvalue().to_pybytes())


def decode_batch(data: bytes) -> pa.RecordBatch:
    with pa.ipc.open_stream(pa.py_buffer(data)) as reader:
        return reader.read_next_batch()


class Ledger:
    """The sync state in one SQLite file (see the module docstring). Thread-safe."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._db = open_database(path, _SCHEMA, what="standby state")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # --- meta ---

    def get(self, key: str) -> Any:
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def put(self, key: str, value: Any, db: sqlite3.Connection | None = None) -> None:
        sql = (
            "INSERT INTO meta(key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value=excluded.value"
        )
        if db is not None:
            db.execute(sql, (key, json.dumps(value)))
            return
        with self.tx() as d:
            d.execute(sql, (key, json.dumps(value)))

    def state(self, collection: str) -> dict[str, Any]:
        got = self.get(f"collection:{collection}")
        return dict(got) if isinstance(got, dict) else {}

    def set_state(
        self, collection: str, db: sqlite3.Connection | None = None, **changes: Any
    ) -> None:
        st = self.state(collection)
        st.update(changes)
        self.put(f"collection:{collection}", st, db)

    def collections(self) -> list[str]:
        with self._lock:
            rows = self._db.execute(
                "SELECT key FROM meta WHERE key LIKE 'collection:%' ORDER BY key"
            ).fetchall()
        return [str(r[0]).partition(":")[2] for r in rows]

    # --- records ---

    def hashes(self, collection: str) -> dict[str, bytes]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, hash FROM records WHERE collection=?", (collection,)
            ).fetchall()
        return {str(i): bytes(h) for i, h in rows}

    def count(self, collection: str) -> int:
        with self._lock:
            row = self._db.execute(
                "SELECT count(*) FROM records WHERE collection=?", (collection,)
            ).fetchone()
        return int(row[0])

    def seed(self, collection: str, hashes: dict[str, bytes]) -> None:
        """What an existing standby collection already holds (a first sync into it)."""
        with self.tx() as db:
            db.execute("DELETE FROM records WHERE collection=?", (collection,))
            db.executemany(
                "INSERT INTO records(collection, id, hash) VALUES (?,?,?)",
                [(collection, i, h) for i, h in hashes.items()],
            )
            self.set_state(collection, db, seeded=True)

    def forget(self, collection: str) -> None:
        """Drop everything known about ``collection`` (the standby holds none of it)."""
        with self.tx() as db:
            db.execute("DELETE FROM records WHERE collection=?", (collection,))
            db.execute("DELETE FROM spool WHERE collection=?", (collection,))
            db.execute("DELETE FROM meta WHERE key=?", (f"collection:{collection}",))

    def reset(self) -> None:
        """Forget every collection (the standby was replaced by another engine)."""
        with self.tx() as db:
            db.execute("DELETE FROM records")
            db.execute("DELETE FROM spool")
            db.execute("DELETE FROM meta WHERE key LIKE 'collection:%'")

    # --- spool ---

    def spool_upserts(self, collection: str, batch: pa.RecordBatch) -> None:
        with self.tx() as db:
            db.execute(
                "INSERT INTO spool(collection, kind, data) VALUES (?, 'upsert', ?)",
                (collection, encode_batch(batch)),
            )

    def spool_deletes(self, collection: str, ids: list[str]) -> None:
        with self.tx() as db:
            db.execute(
                "INSERT INTO spool(collection, kind, data) VALUES (?, 'delete', ?)",
                (collection, json.dumps(ids).encode()),
            )

    def spooled(self, collection: str) -> int:
        with self._lock:
            row = self._db.execute(
                "SELECT count(*) FROM spool WHERE collection=?", (collection,)
            ).fetchone()
        return int(row[0])

    def next_chunk(self, collection: str) -> tuple[int, str, bytes] | None:
        with self._lock:
            row = self._db.execute(
                "SELECT seq, kind, data FROM spool WHERE collection=? ORDER BY seq LIMIT 1",
                (collection,),
            ).fetchone()
        return None if row is None else (int(row[0]), str(row[1]), bytes(row[2]))

    def applied_upserts(
        self, seq: int, collection: str, ids: list[str], hashes: list[bytes]
    ) -> None:
        with self.tx() as db:
            db.executemany(
                "INSERT INTO records(collection, id, hash) VALUES (?,?,?) "
                "ON CONFLICT(collection, id) DO UPDATE SET hash=excluded.hash",
                [(collection, i, h) for i, h in zip(ids, hashes, strict=True)],
            )
            db.execute("DELETE FROM spool WHERE seq=?", (seq,))

    def applied_deletes(self, seq: int, collection: str, ids: list[str]) -> None:
        with self.tx() as db:
            db.executemany(
                "DELETE FROM records WHERE collection=? AND id=?", [(collection, i) for i in ids]
            )
            db.execute("DELETE FROM spool WHERE seq=?", (seq,))
