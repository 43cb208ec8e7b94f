"""One sync pass of a warm standby: read the source's changes, then apply them in batches.

A pass exports the source collection in batches of ``batch_size`` (the engine's export:
pages, a pinned version or a read transaction; nothing else holds the source), hashes
every record with :func:`~drkit.replication.vectors.layout.record_hashes` (the snapshots'
per-record hash) and spools only the records whose hash differs from the ledger, and
the ids the ledger has that the source no longer does. The export is closed before the
standby is written. Then the spool is applied chunk by chunk (see :mod:`.ledger`).

Deletes need a consistent cut: a count-check engine (Qdrant, Chroma, Milvus) can skip a
record while others are written meanwhile, so an id it does not return is deleted on the
standby only when a second pass misses it too, and never from a pass whose cut warning
says the collection moved. ``synced_as_of`` (every change older than it is on the
standby) then advances to the start of the earlier of the two passes.

**Lag** = now - ``synced_as_of``: an upper bound of the age of the oldest change not yet
on the standby, i.e. the data a regional failover to the standby loses (its RPO).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import pyarrow as pa

from drkit.connectors.vectorstore.base import ID, VectorStore
from drkit.connectors.vectorstore.transfer import map_config, not_carried, rename_columns
from drkit.replication.vectors.compare import collection_fingerprint, user_collections
from drkit.replication.vectors.layout import HASH, HASH_BYTES, record_hashes

from .ledger import Ledger, decode_batch

log = logging.getLogger("drkit.standby")
#: a pass reads the source again (after applying what it read) while the cut moved
READ_ATTEMPTS = 3


@dataclass(slots=True)
class CollectionSync:
    """What one pass did to one collection."""

    collection: str
    upserted: int = 0
    deleted: int = 0
    #: ids the source did not return once (deleted when the next pass confirms)
    deletes_pending: int = 0
    unchanged: int = 0
    source_records: int = 0
    #: chunks left from an interrupted pass, applied first
    resumed_chunks: int = 0
    #: the export's cut was not consistent: deletes wait for a clean pass
    cut_warning: str | None = None
    synced_as_of: float | None = None
    lag_s: float | None = None
    duration_s: float = 0.0
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def lag_of(ledger: Ledger, collections: list[str], now: float | None = None) -> float | None:
    """The standby's lag: now - the oldest ``synced_as_of`` (None: never fully synced)."""
    moment = time.time() if now is None else now
    marks = [ledger.state(c).get("synced_as_of") for c in collections]
    if not marks or any(m is None for m in marks):
        return None
    return max(0.0, moment - min(float(m) for m in marks if m is not None))


def source_collections(source: VectorStore, wanted: list[str]) -> list[str]:
    return list(wanted) if wanted else user_collections(source)


def apply_spool(
    ledger: Ledger,
    standby: VectorStore,
    name: str,
    renames: dict[str, str],
    report: CollectionSync,
    *,
    chunk_done: Callable[[], None] | None = None,
) -> None:
    """Apply every spooled chunk of ``name`` to the standby, in order."""
    while (chunk := ledger.next_chunk(name)) is not None:
        seq, kind, data = chunk
        if kind == "upsert":
            batch = decode_batch(data)
            hashes = [bytes(h) for h in batch.column(HASH).to_pylist()]
            ids = [str(i) for i in batch.column(ID).to_pylist()]
            records = batch.drop_columns([HASH])
            standby.import_batches(name, rename_columns([records], renames))
            ledger.applied_upserts(seq, name, ids, hashes)
            report.upserted += len(ids)
        else:
            gone = [str(i) for i in json.loads(data)]
            standby.delete_ids(name, gone)
            ledger.applied_deletes(seq, name, gone)
            report.deleted += len(gone)
        if chunk_done is not None:
            chunk_done()


def sync_collection(
    source: VectorStore,
    standby: VectorStore,
    name: str,
    ledger: Ledger,
    *,
    batch_size: int = 1000,
    chunk_done: Callable[[], None] | None = None,
) -> CollectionSync:
    """One pass for collection ``name``: finish an interrupted pass, read, apply."""
    t0 = time.perf_counter()
    report = CollectionSync(name)
    config = source.describe(name)
    mapped, renames = map_config(config, standby)  # refuses before anything is written
    st = ledger.state(name)
    if name not in standby.list_collections():
        if st:
            report.notes.append(f"the standby lost {name!r}: syncing it again in full")
        ledger.forget(name)
        for note in not_carried(config, standby):
            report.notes.append(note)
        standby.create(mapped, name)
        ledger.set_state(name, created=time.time())
    elif not st:
        # a standby collection drkit has no state for: start from what it holds
        held = collection_fingerprint(standby, name, batch_size=batch_size)
        ledger.seed(name, held)
        report.notes.append(f"the standby already held {len(held)} records of {name!r}")
    report.resumed_chunks = ledger.spooled(name)
    apply_spool(ledger, standby, name, renames, report, chunk_done=chunk_done)
    for _ in range(READ_ATTEMPTS):
        _read(source, name, config, ledger, batch_size, report)
        apply_spool(ledger, standby, name, renames, report, chunk_done=chunk_done)
        if report.cut_warning is None:
            break
    st = ledger.state(name)
    if st.get("pass_clean"):
        ledger.set_state(name, synced_as_of=st.get("pass_as_of"), pass_clean=False)
    report.synced_as_of = ledger.state(name).get("synced_as_of")
    report.lag_s = lag_of(ledger, [name])
    report.duration_s = round(time.perf_counter() - t0, 3)
    return report


def _read(
    source: VectorStore,
    name: str,
    config: Any,
    ledger: Ledger,
    batch_size: int,
    report: CollectionSync,
) -> None:
    """Spool the source's changes against the ledger (the export closes before any write)."""
    started = time.time()
    known = ledger.hashes(name)
    seen: dict[str, bytes] = {}
    stream = source.export(name, batch_size=batch_size)
    for batch in stream:
        hashes = record_hashes(config, batch)
        ids = [str(i) for i in batch.column(ID).to_pylist()]
        fresh = []
        for i, (rid, h) in enumerate(zip(ids, hashes, strict=True)):
            if known.get(rid) != h and seen.get(rid) != h:
                fresh.append(i)
            seen[rid] = h
        report.unchanged += len(ids) - len(fresh)
        if fresh:
            part = batch if len(fresh) == len(batch) else batch.take(pa.array(fresh))
            sub = pa.array([hashes[i] for i in fresh], pa.binary(HASH_BYTES))
            ledger.spool_upserts(name, part.append_column(HASH, sub))
    report.source_records = len(seen)
    cut = stream.cut
    report.cut_warning = cut.warning
    st = ledger.state(name)
    absent = sorted(set(known) - set(seen))
    as_of = started
    if cut.warning:
        ledger.set_state(name, pass_clean=False, missed_once=[])
        report.deletes_pending = len(absent)
        return
    if source.capabilities.consistent_cut == "count-check":
        # delete only what two passes in a row did not return (a page can skip a record
        # while others are written); what one pass missed waits for the next
        before = set(st.get("missed_once") or [])
        pending = [i for i in absent if i not in before]
        absent = [i for i in absent if i in before]
        previous = st.get("last_pass_started")
        ledger.set_state(name, missed_once=pending, last_pass_started=started)
        report.deletes_pending = len(pending)
        if pending:
            if previous is None:  # nothing confirms the first pass's deletes yet
                _spool_deletes(ledger, name, absent, batch_size)
                ledger.set_state(name, pass_clean=False)
                return
            as_of = float(previous)
    _spool_deletes(ledger, name, absent, batch_size)
    ledger.set_state(name, pass_clean=True, pass_as_of=as_of)


def _spool_deletes(ledger: Ledger, name: str, ids: list[str], batch_size: int) -> None:
    for lo in range(0, len(ids), batch_size):
        ledger.spool_deletes(name, ids[lo : lo + batch_size])
