"""Read a vector snapshot: its manifest, its index (a full index, or a chain of a full
index and deltas), and its records with every record's hash checked."""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from drkit.errors import CorruptObject, SnapshotNotFound
from drkit.repository import Repository, Snapshot
from drkit.repository.files import load_tree

from .layout import (
    DELETED,
    HASH,
    INDEX,
    INDEX_CHAIN,
    MANIFEST,
    Manifest,
    decode_arrow,
    hash_rows_of,
    record_hash_rows,
    segment_schema,
)

KIND = "vectors"
Progress = Callable[[int], None]
T = TypeVar("T")


@dataclass(slots=True)
class Opened:
    """A vector snapshot opened for reading: manifest and the live-record index."""

    snapshot: Snapshot
    manifest: Manifest
    index: pa.Table
    #: the tree nodes the index was read from: ``[index.arrow]``, or the chain's files
    index_nodes: list[dict[str, Any]] = field(default_factory=list)


def _read_content(repo: Repository, node: dict[str, Any]) -> bytes:
    return b"".join(repo.read_blob(b) for b in node.get("content", []))


def open_snapshot(repo: Repository, snapshot: Snapshot | str) -> Opened:
    """Open a vector snapshot. Raises :class:`SnapshotNotFound` for other kinds and
    :class:`CorruptObject` when its files do not agree with each other."""
    snap = snapshot if isinstance(snapshot, Snapshot) else repo.find_snapshot(snapshot)
    if snap.kind != KIND:
        raise SnapshotNotFound(
            f"snapshot {snap.short_id} is a {snap.kind!r} snapshot, not a vector snapshot",
            hint="list vector snapshots with `drkit snapshots`",
        )
    nodes = {n["name"]: n for n in load_tree(repo, snap.tree)}
    if MANIFEST not in nodes:
        raise CorruptObject(f"snapshot {snap.short_id} lacks {MANIFEST}")
    if INDEX in nodes:
        chain = [nodes[INDEX]]
    elif nodes.get(INDEX_CHAIN, {}).get("type") == "dir":
        chain = sorted(load_tree(repo, nodes[INDEX_CHAIN]["subtree"]), key=lambda n: n["name"])
    else:
        raise CorruptObject(f"snapshot {snap.short_id} lacks {INDEX}")
    if not chain:
        raise CorruptObject(f"snapshot {snap.short_id}: empty index chain")
    manifest = Manifest.from_bytes(_read_content(repo, nodes[MANIFEST]))
    index = _apply_chain(repo, chain, snap.short_id)
    if len(index) != manifest.records:
        raise CorruptObject(
            f"snapshot {snap.short_id}: index lists {len(index)} records, "
            f"manifest {manifest.records}"
        )
    return Opened(snap, manifest, index, chain)


def _apply_chain(repo: Repository, chain: list[dict[str, Any]], short: str) -> pa.Table:
    """The live-record index: the chain's full index with its deltas applied in order."""
    index = decode_arrow(_read_content(repo, chain[0]), f"index of {short}")
    for node in chain[1:]:
        delta = decode_arrow(_read_content(repo, node), f"index delta {node['name']} of {short}")
        if index.schema != delta.schema:
            raise CorruptObject(f"snapshot {short}: index delta {node['name']} has another schema")
        gone = pc.is_in(index.column("id"), value_set=delta.column("id").combine_chunks())
        kept = delta.filter(pc.not_equal(delta.column("segment"), DELETED))
        index = pa.concat_tables([index.filter(pc.invert(gone)), kept])
    return index.sort_by("id") if len(chain) > 1 else index


def read_records(
    repo: Repository, opened: Opened, *, batch_size: int = 5000, progress: Progress | None = None
) -> Iterator[pa.RecordBatch]:
    """Yield the snapshot's live records as canonical batches, each record's hash checked.

    Raises :class:`CorruptObject` on a record whose content does not match its hash.
    """
    config = opened.manifest.config
    idx = opened.index
    segs = idx.column("segment").to_numpy()
    rows = idx.column("row").to_numpy()
    hashes = idx.column("hash")
    order = np.argsort(segs, kind="stable")
    bounds = np.searchsorted(segs[order], np.arange(len(opened.manifest.segments) + 1))
    schema = segment_schema(config)
    canonical = [f.name for f in schema if f.name != HASH]
    live = [s for s in range(len(opened.manifest.segments)) if bounds[s + 1] > bounds[s]]
    # read, decrypt, decompress and check the blobs of the next segments in the
    # repository's pool while this thread checks and yields the current one
    ahead: deque[list[Future[bytes]]] = deque()
    window = repo.workers * 2
    queued = 0

    def top_up() -> None:
        nonlocal queued
        while queued < len(live) and len(ahead) < window:
            seg = opened.manifest.segments[live[queued]]
            ahead.append([repo.pool.submit(repo.read_blob, b) for b in seg.content])
            queued += 1

    for s in live:
        seg = opened.manifest.segments[s]
        picks = order[bounds[s] : bounds[s + 1]]
        top_up()
        data = b"".join(f.result() for f in ahead.popleft())
        table = decode_arrow(data, f"segment {seg.name}")
        if table.schema.names != schema.names or len(table) != seg.rows:
            raise CorruptObject(f"segment {seg.name} does not match the manifest")
        wanted = rows[picks]
        if len(wanted) and (wanted.min() < 0 or wanted.max() >= len(table)):
            raise CorruptObject(f"the index points outside segment {seg.name}")
        if len(wanted) == len(table) and bool((wanted == np.arange(len(table))).all()):
            taken = table  # every row live and in order (a full snapshot): no copy
        else:
            taken = table.take(pa.array(wanted))
        # as (n, 16) byte matrices: no Python object per hash (~1 us a record)
        expected = hash_rows_of(hashes.take(pa.array(picks)))
        if not np.array_equal(hash_rows_of(taken.column(HASH)), expected):
            raise CorruptObject(f"segment {seg.name}: rows do not match the index")
        done = 0
        for batch in taken.select(canonical).to_batches(max_chunksize=batch_size):
            got = record_hash_rows(config, batch)
            if not np.array_equal(got, expected[done : done + len(batch)]):
                raise CorruptObject(f"segment {seg.name}: a record does not match its hash")
            done += len(batch)
            if progress:
                progress(len(batch))
            yield batch


def read_ahead(items: Iterator[T], depth: int = 4) -> Generator[T, None, None]:
    """``items`` drawn by a helper thread up to ``depth`` ahead of the consumer, so that
    reading (a restore's record hashes) overlaps what the consumer does with each (the
    engine's import). What ``items`` raises is raised here, where the consumer would have
    met it; a consumer that stops early (an error, ``close()``) stops the helper and
    closes ``items`` before this returns, so nothing reads on after the caller's locks."""
    box: queue.Queue[tuple[int, Any]] = queue.Queue(depth)
    stop = threading.Event()
    ITEM, END, ERROR = 0, 1, 2

    def put(entry: tuple[int, Any]) -> bool:
        while not stop.is_set():
            try:
                box.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def fill() -> None:
        try:
            for item in items:
                if not put((ITEM, item)):
                    return
            put((END, None))
        except BaseException as exc:  # handed to the consumer, raised there
            put((ERROR, exc))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    helper = threading.Thread(target=fill, name="drkit-read-ahead", daemon=True)
    helper.start()
    try:
        while True:
            kind, value = box.get()
            if kind == END:
                return
            if kind == ERROR:
                raise value
            yield value
    finally:
        stop.set()
        helper.join()
