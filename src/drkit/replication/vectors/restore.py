"""Restore a vector snapshot into any engine, export it as Parquet, and verify it.

Restore and export hold a shared repository lock, so a concurrent ``forget --prune``
waits instead of deleting packs they read. Restore is atomic per collection
(:func:`~drkit.connectors.vectorstore.transfer.load_collection`:
temporary collection, then rename or copy) and refuses a config the target cannot hold
before it writes anything. What a restore into another engine cannot carry (index
parameters, typed columns, ...) is worked out before any write — :func:`plan_restore`
works it out without writing at all (``drkit restore --dry-run``) — and listed in the
report (``not_carried``). The restore test is in :mod:`.verify`.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import time
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from drkit.connectors.vectorstore.base import CollectionConfig, VectorStore, arrow_schema
from drkit.connectors.vectorstore.transfer import load_collection, map_config, not_carried
from drkit.errors import UsageError
from drkit.repository import Repository, Snapshot

from .leftovers import clean_leftovers, leftovers
from .reading import read_ahead
from .snapshot import Opened, Progress, open_snapshot, read_records


@dataclass(frozen=True, slots=True)
class RestoreReport:
    snapshot: str
    target: str
    collection: str
    records: int
    duration_s: float
    #: drkit's temporary collections for this name that a killed run had left (dropped)
    cleaned: tuple[str, ...] = ()
    #: what the target engine could not carry, one sentence each (worked out before any
    #: write; empty into the same engine)
    not_carried: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RestorePlan:
    """What a restore would do, worked out without writing (:func:`plan_restore`)."""

    snapshot: str
    target: str
    collection: str
    records: int
    #: the engine the snapshot was taken from, and the target's
    source_engine: str
    target_engine: str
    #: the collection already exists in the target (a restore refuses it, ``--replace``
    #: swaps it out)
    exists: bool
    not_carried: tuple[str, ...] = ()
    #: drkit's leftovers for this name a restore would drop first
    leftovers: tuple[str, ...] = ()
    #: how ``--replace`` would swap the restored collection in: "atomic" or "not atomic:
    #: <why>" ("" when there is no collection to replace); see :func:`swap_outlook`
    swap: str = ""


def swap_outlook(store: VectorStore, name: str, aliases: dict[str, str]) -> str:
    """What ``restore --replace`` of ``name`` would say of its swap, from the engine's
    capabilities (LanceDB falls back to two renames where the filesystem cannot
    exchange directories: the restore then says so)."""
    caps = store.capabilities
    if name in aliases or caps.swap == "exchange":
        return "atomic"
    return f"not atomic: {caps.renames_caveat}"


def plan_restore(
    repo: Repository,
    snapshot: Snapshot | str | Opened,
    store: VectorStore,
    name: str | None = None,
) -> RestorePlan:
    """What restoring ``snapshot`` into ``store`` as ``name`` would do, and what the
    target could not carry, without writing anything (the target, the repository).
    Raises :class:`IncompatibleTarget` as the restore would."""
    with repo.lock(exclusive=False):
        opened = snapshot if isinstance(snapshot, Opened) else open_snapshot(repo, snapshot)
    m = opened.manifest
    target = name or m.collection
    map_config(m.config, store)
    store.check_name(target)
    aliases = store.aliases()
    exists = target in store.list_collections() or target in aliases
    return RestorePlan(
        opened.snapshot.id,
        store.url,
        target,
        m.records,
        m.config.engine or "",
        store.engine,
        exists,
        tuple(not_carried(m.config, store)),
        tuple(leftovers(store, target)),
        swap_outlook(store, target, aliases) if exists else "",
    )


def restore_collection(
    repo: Repository,
    snapshot: Snapshot | str | Opened,
    store: VectorStore,
    name: str | None = None,
    *,
    batch_size: int = 5000,
    progress: Progress | None = None,
) -> RestoreReport:
    """Restore into ``store`` as ``name`` (default: the snapshotted collection's name).

    Raises :class:`IncompatibleTarget` / :class:`CollectionExists` before writing, and
    :class:`CorruptObject` (with the target left untouched) on damaged snapshot data.
    """
    t0 = time.perf_counter()
    with repo.lock(exclusive=False):  # a concurrent prune must not delete its packs
        opened = snapshot if isinstance(snapshot, Opened) else open_snapshot(repo, snapshot)
        target = name or opened.manifest.collection
        map_config(opened.manifest.config, store)  # refuse before touching the store
        notes = tuple(not_carried(opened.manifest.config, store))  # before any write
        cleaned = tuple(clean_leftovers(store, target))
        # the records are read and checked while the engine imports the ones before
        batches = read_ahead(read_records(repo, opened, batch_size=batch_size, progress=progress))
        with closing(batches):  # its helper stops before the lock is let go
            count = restore_opened(repo, opened, store, target, batches=batches)
    return RestoreReport(
        opened.snapshot.id,
        store.url,
        target,
        count,
        round(time.perf_counter() - t0, 3),
        cleaned,
        notes,
    )


def restore_opened(
    repo: Repository,
    opened: Opened,
    store: VectorStore,
    name: str,
    *,
    batches: Iterator[pa.RecordBatch] | None = None,
) -> int:
    """Load the snapshot's records (or ``batches`` drawn from them) into ``name``; the
    caller holds the repository lock. Returns the count."""
    m = opened.manifest
    map_config(m.config, store)  # refuse before reading any record
    return load_collection(
        store,
        m.config,
        batches if batches is not None else read_records(repo, opened),
        name,
        expected_rows=m.records,
    )


@dataclass(frozen=True, slots=True)
class ExportReport:
    snapshot: str
    directory: str
    files: list[str]
    records: int
    bytes: int


RECORDS = "records.parquet"
#: a DuckDB view of the records with the vectors as fixed-size arrays
DUCKDB_VIEW = "records.sql"


def duckdb_view(config: CollectionConfig, parquet: Path) -> str:
    """``CREATE VIEW records`` over ``parquet`` with each vector column as ``FLOAT[dim]``.

    Parquet has no fixed-size list type: pyarrow reads the vectors back as fixed-size
    lists (from the Arrow schema stored in the file), but DuckDB sees ``FLOAT[]``, which
    its array functions (``array_cosine_similarity``, ...) refuse without a cast.
    """

    def q(name: str) -> str:
        return '"' + name.replace('"', '""') + '"'

    dims = {v.column: v.dimension for v in config.vectors}
    cols = [
        f"CAST({q(c)} AS FLOAT[{dims[c]}]) AS {q(c)}" if c in dims else q(c)
        for c in arrow_schema(config).names
    ]
    path = str(parquet).replace("'", "''")
    return (
        "-- drkit: the exported records, vectors as fixed-size arrays (DuckDB: .read this)\n"
        "CREATE OR REPLACE VIEW records AS\nSELECT " + ",\n       ".join(cols) + "\n"
        f"FROM read_parquet('{path}');\n"
    )


def export_parquet(
    repo: Repository, snapshot: Snapshot | str, directory: Path, *, batch_size: int = 5000
) -> ExportReport:
    """Write the snapshot's live records as ``records.parquet`` (zstd; vectors as
    fixed-size lists) plus ``config.json``, ``snapshot.json`` and ``records.sql`` (a
    DuckDB view, :func:`duckdb_view`) into a new (or empty) ``directory``, atomically (a
    sibling temporary directory renamed into place)."""
    directory = Path(directory)
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise UsageError(
            f"{directory} exists and is not an empty directory",
            hint="export into a new directory",
        )
    with repo.lock(exclusive=False):
        return _export(repo, snapshot, directory, batch_size)


def _export(
    repo: Repository, snapshot: Snapshot | str, directory: Path, batch_size: int
) -> ExportReport:
    opened = open_snapshot(repo, snapshot)
    m = opened.manifest
    directory.parent.mkdir(parents=True, exist_ok=True)
    # a sibling made by mkdir, not mkdtemp: the export gets the umask's mode (mkdtemp's
    # 0700 would leave the directory unreadable to the tools it is exported for)
    tmp = directory.parent / f".{directory.name}.{secrets.token_hex(4)}"
    tmp.mkdir()
    try:
        schema = arrow_schema(m.config)
        schema = schema.with_metadata({"drkit.config": json.dumps(m.config.to_json())})
        with pq.ParquetWriter(tmp / RECORDS, schema, compression="zstd") as w:
            for batch in read_records(repo, opened, batch_size=batch_size):
                w.write_batch(batch)
        (tmp / "config.json").write_text(json.dumps(m.config.to_json(), indent=2, sort_keys=True))
        info = {
            "snapshot": opened.snapshot.id,
            "component": opened.snapshot.component,
            "time": opened.snapshot.time,
            "collection": m.collection,
            "source": m.source,
            "records": m.records,
            "cut": m.cut,
        }
        (tmp / "snapshot.json").write_text(json.dumps(info, indent=2, sort_keys=True))
        (tmp / DUCKDB_VIEW).write_text(duckdb_view(m.config, directory.resolve() / RECORDS))
        if directory.exists():
            directory.rmdir()
        os.replace(tmp, directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    files = sorted(p.name for p in directory.iterdir())
    size = sum((directory / f).stat().st_size for f in files)
    return ExportReport(opened.snapshot.id, str(directory), files, m.records, size)
