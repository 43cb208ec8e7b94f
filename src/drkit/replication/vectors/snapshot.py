"""Snapshot a collection into the repository, full or incremental, and read it back.

Incremental by per-record hash against the parent snapshot's index: unchanged records
are referenced where the parent stored them (its segment nodes are carried into the new
tree, so no byte is stored again); new and changed records go into new segments;
records missing from the export are deletes (the new index no longer lists them). With
1% of records changed at random, only those records plus the index (about 34 bytes per
record) are written. When superseded rows in carried segments outnumber live ones, the
next snapshot is written in full (compaction), so restores never read mostly garbage.

An export that fails (engine unreachable, ...) raises before the manifest is written:
no snapshot appears, and the blobs written so far are unreferenced (``prune`` removes
them).
"""

from __future__ import annotations

import getpass
import json
import logging
import os
import socket
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from drkit.connectors.vectorstore.base import ID, CollectionConfig, VectorStore
from drkit.errors import CorruptObject, SnapshotNotFound, UsageError, VectorStoreError
from drkit.repository import BlobType, Repository, Snapshot
from drkit.repository.codec import MODE_ZSTD, SAMPLE, choose_mode
from drkit.repository.files import load_tree, write_tree
from drkit.repository.snapshot import now_iso

from .layout import (
    CONFIG,
    HASH,
    INDEX,
    INDEX_SCHEMA,
    MANIFEST,
    SEGMENT_BYTES,
    SEGMENTS,
    Manifest,
    Segment,
    decode_arrow,
    encode_arrow,
    pieces,
    record_hashes,
    segment_pieces,
    segment_schema,
)

KIND = "vectors"
log = logging.getLogger("drkit.replication.vectors")
Progress = Callable[[int], None]


@dataclass(frozen=True, slots=True)
class SnapshotResult:
    snapshot: Snapshot
    records: int
    added: int
    changed: int
    deleted: int
    unchanged: int
    new_segments: int
    carried_segments: int
    export_s: float
    pipeline_s: float
    warning: str | None


class _Writer:
    """Encode blobs in the repository's pool (bounded window), finish them in order."""

    def __init__(self, repo: Repository) -> None:
        self.repo = repo
        self.window = repo.workers * 3 + 2
        self.q: deque[tuple[Future[tuple[bytes, bytes | bytearray | None]], int, list[str], int]]
        self.q = deque()

    def write(self, data: bytes | memoryview, mode: int | None = None) -> list[str]:
        """Queue ``data`` (cut into pieces); the returned list is filled by :meth:`drain`."""
        return self.write_parts([(p, mode) for p in pieces(data)])

    def write_parts(self, parts: list[tuple[bytes | memoryview, int | None]]) -> list[str]:
        """Queue pieces, each with its codec mode (None: sampled in the pool thread)."""
        sink = [""] * len(parts)
        for i, (part, mode) in enumerate(parts):
            fut = self.repo.pool.submit(self._encode, part, mode)
            self.q.append((fut, len(part), sink, i))
            while len(self.q) > self.window:
                self._finish_one()
        return sink

    def _encode(
        self, part: bytes | memoryview, mode: int | None
    ) -> tuple[bytes, bytes | bytearray | None]:
        """In a pool thread: pick the mode from the piece's first 64 KiB (when not given)
        and encode; the sampling was a fifth of the main thread's time."""
        m = mode if mode is not None else choose_mode(part[:SAMPLE])
        return self.repo.encode_blob(part, m)

    def _finish_one(self) -> None:
        fut, n, sink, idx = self.q.popleft()
        bid, stored = fut.result()
        if stored is not None:
            self.repo.add_encoded(BlobType.DATA, bid, stored, n)
        sink[idx] = bid.hex()

    def drain(self) -> None:
        while self.q:
            self._finish_one()


# --- reading ---------------------------------------------------------------------------


@dataclass(slots=True)
class Opened:
    """A vector snapshot opened for reading: manifest and the live-record index."""

    snapshot: Snapshot
    manifest: Manifest
    index: pa.Table


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
    for required in (MANIFEST, INDEX):
        if required not in nodes:
            raise CorruptObject(f"snapshot {snap.short_id} lacks {required}")
    manifest = Manifest.from_bytes(_read_content(repo, nodes[MANIFEST]))
    index = decode_arrow(_read_content(repo, nodes[INDEX]), f"{INDEX} of {snap.short_id}")
    if len(index) != manifest.records:
        raise CorruptObject(
            f"snapshot {snap.short_id}: index lists {len(index)} records, "
            f"manifest {manifest.records}"
        )
    return Opened(snap, manifest, index)


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

    # the second half of each batch's records is hashed in this thread, the first in
    # a helper thread (blake3 releases the GIL for the vector bytes)
    helper = ThreadPoolExecutor(1, thread_name_prefix="drkit-hash")
    try:
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
            expected = hashes.take(pa.array(picks)).to_pylist()
            if taken.column(HASH).to_pylist() != expected:
                raise CorruptObject(f"segment {seg.name}: rows do not match the index")
            for batch in taken.select(canonical).to_batches(max_chunksize=batch_size):
                if record_hashes(config, batch, helper) != expected[: len(batch)]:
                    raise CorruptObject(f"segment {seg.name}: a record does not match its hash")
                expected = expected[len(batch) :]
                if progress:
                    progress(len(batch))
                yield batch
    finally:
        helper.shutdown(wait=True)


def vector_snapshots(
    repo: Repository, component: str, collection: str | None = None
) -> list[Snapshot]:
    """Vector snapshots of a component (optionally one collection), oldest first."""
    return [
        s
        for s in repo.snapshots(component)
        if s.kind == KIND and (collection is None or s.meta.get("collection") == collection)
    ]


# --- writing ---------------------------------------------------------------------------


def same_shape(a: CollectionConfig, b: CollectionConfig) -> bool:
    """Same vector fields: names, dimensions and metrics."""
    return [(v.name, v.dimension, v.metric) for v in a.vectors] == [
        (v.name, v.dimension, v.metric) for v in b.vectors
    ]


def snapshot_collection(
    repo: Repository,
    store: VectorStore,
    collection: str,
    *,
    component: str,
    parent: Snapshot | str | None = "auto",
    tags: tuple[str, ...] = (),
    batch_size: int = 2000,
    full: bool = False,
    segment_bytes: int = SEGMENT_BYTES,
    progress: Progress | None = None,
    retries: int = 2,
) -> SnapshotResult:
    """Snapshot ``collection`` of ``store`` as component ``component``.

    ``parent="auto"`` picks the newest vector snapshot of the same component and
    collection; ``None`` or ``full=True`` writes a full snapshot. When a count-check
    engine changed during the export, the export runs again, up to ``retries`` more
    times; if it still moved, the snapshot is written with ``cut.warning`` (recorded in
    ``meta.cut`` and returned as ``warning``). Raises what the store raises
    (:class:`EngineUnreachable`, :class:`CollectionNotFound`) with no snapshot
    written.
    """
    if not component:
        raise UsageError("a vector snapshot needs a component name")
    t0 = time.perf_counter()
    config = store.describe(collection)
    if parent == "auto":
        previous = vector_snapshots(repo, component, collection)
        parent = previous[-1] if previous else None
    elif isinstance(parent, str):
        parent = repo.find_snapshot(parent)
    base: Opened | None = None
    if parent is not None and not full:
        base = open_snapshot(repo, parent)
        m = base.manifest
        dead = sum(s.rows for s in m.segments) - m.records
        if not same_shape(m.config, config) or dead > m.records:
            base = None  # config changed, or compaction is due: write in full
    export_s = 0.0
    with (
        repo.lock(exclusive=False),
        ThreadPoolExecutor(1, thread_name_prefix="drkit-hash") as hasher,
    ):
        writer = _Writer(repo)
        before = dict(repo.stats)
        schema = segment_schema(config)
        # parent: id -> (hash, segment, row)
        known: dict[str, tuple[bytes, int, int]] = {}
        if base is not None:
            ix = base.index
            known = dict(
                zip(
                    ix.column(ID).to_pylist(),
                    zip(
                        ix.column("hash").to_pylist(),
                        ix.column("segment").to_pylist(),
                        ix.column("row").to_pylist(),
                        strict=True,
                    ),
                    strict=True,
                )
            )
        # index parts: (ids, hashes, segment, row); segment >= 0: new segment number,
        # < 0: -(parent segment + 1)
        out: list[tuple[pa.Array, pa.Array, np.ndarray[Any, Any], np.ndarray[Any, Any]]] = []
        new_segments: list[Segment] = []
        pending: list[pa.RecordBatch] = []
        pending_bytes = 0
        added = changed = unchanged = 0

        def flush_segment(rows: int | None = None) -> None:
            """Write the first ``rows`` pending rows (default all) as one segment."""
            nonlocal pending, pending_bytes
            if not pending:
                return
            table = pa.Table.from_batches(pending, schema=schema)
            rest = None
            if rows is not None and rows < len(table):
                table, rest = table.slice(0, rows), table.slice(rows)
            data = encode_arrow(table)
            content = writer.write_parts(segment_pieces(data, config))
            seg_no = len(new_segments)
            new_segments.append(Segment("", content, len(table), len(data)))
            n = len(table)
            out.append(
                (
                    table.column(ID).combine_chunks(),
                    table.column(HASH).combine_chunks(),
                    np.full(n, seg_no, dtype=np.int32),
                    np.arange(n, dtype=np.int32),
                )
            )
            pending = rest.to_batches() if rest is not None else []
            pending_bytes = rest.nbytes if rest is not None else 0

        for attempt in range(retries + 1):  # count-check engines: again if it moved
            out.clear()
            new_segments.clear()
            pending.clear()
            pending_bytes = 0
            added = changed = unchanged = 0
            stream = store.export(collection, batch_size=batch_size)
            t_export = time.perf_counter()
            for batch in stream:
                export_s += time.perf_counter() - t_export
                hashes = record_hashes(config, batch, hasher)
                fresh: list[int] = []
                if known:
                    c_ids: list[str] = []
                    c_hash: list[bytes] = []
                    c_seg: list[int] = []
                    c_row: list[int] = []
                    for i, (rid, h) in enumerate(
                        zip(batch.column(ID).to_pylist(), hashes, strict=True)
                    ):
                        prev = known.get(rid)
                        if prev is not None and prev[0] == h:
                            c_ids.append(rid)
                            c_hash.append(h)
                            c_seg.append(-(prev[1] + 1))
                            c_row.append(prev[2])
                        else:
                            fresh.append(i)
                            if prev is None:
                                added += 1
                            else:
                                changed += 1
                    if c_ids:
                        unchanged += len(c_ids)
                        out.append(
                            (
                                pa.array(c_ids, pa.string()),
                                pa.array(c_hash, pa.binary(16)),
                                np.array(c_seg, dtype=np.int32),
                                np.array(c_row, dtype=np.int32),
                            )
                        )
                else:  # a full snapshot: every record is new
                    fresh = list(range(len(batch)))
                    added += len(batch)
                if fresh:
                    part = batch if len(fresh) == len(batch) else batch.take(pa.array(fresh))
                    sub = [hashes[i] for i in fresh]
                    part = pa.RecordBatch.from_arrays(
                        [*part.columns, pa.array(sub, pa.binary(16))], schema=schema
                    )
                    pending.append(part)
                    pending_bytes += part.nbytes
                    while pending_bytes >= segment_bytes:
                        per_row = max(1, pending_bytes // sum(len(b) for b in pending))
                        flush_segment(max(1, segment_bytes // per_row))
                if progress:
                    progress(len(batch))
                t_export = time.perf_counter()
            flush_segment()
            cut = stream.cut
            all_ids = pa.chunked_array([o[0] for o in out], pa.string())
            dupes = len(pc.unique(all_ids)) != len(all_ids)
            if (cut.warning or dupes) and attempt < retries:
                log.warning(
                    "%s: exporting %r again (attempt %d of %d)",
                    cut.warning or "duplicate ids",
                    collection,
                    attempt + 2,
                    retries + 1,
                )
                continue
            if dupes:
                raise VectorStoreError(
                    f"the export of {collection!r} returned an id twice: the collection changed "
                    "during the export",
                    hint="pause writers and snapshot again",
                )
            break
        deleted = len(known) - unchanged - changed

        # segment table: carried parent segments (still referenced) first, then new ones
        seg_col = np.concatenate([o[2] for o in out]) if out else np.zeros(0, np.int32)
        carried = seg_col < 0
        old = -seg_col[carried] - 1
        carried_old = np.unique(old)
        segments = [base.manifest.segments[int(o)] for o in carried_old] if base else []
        n_carried = len(segments)
        seg_col[carried] = np.searchsorted(carried_old, old)
        seg_col[~carried] += n_carried
        writer.drain()
        for seg in new_segments:
            seg.name = f"seg-{seg.content[0][:24]}.arrow"
        segments += new_segments

        index = pa.table(
            [
                pa.chunked_array([o[0] for o in out], pa.string()),
                pa.chunked_array([o[1] for o in out], pa.binary(16)),
                pa.array(seg_col, pa.int32()),
                pa.array(
                    np.concatenate([o[3] for o in out]) if out else np.zeros(0, np.int32),
                    pa.int32(),
                ),
            ],
            schema=INDEX_SCHEMA,
        ).sort_by(ID)
        records = len(index)
        pipeline_s = time.perf_counter() - t0 - export_s
        manifest = Manifest(
            config=config,
            collection=collection,
            source=store.url,
            records=records,
            segments=segments,
            stats={
                "added": added,
                "changed": changed,
                "deleted": deleted,
                "unchanged": unchanged,
                "new_segments": len(new_segments),
                "carried_segments": n_carried,
            },
            cut=cut.to_json(),
            parent=base.snapshot.id if base else None,
        )
        index_bytes = encode_arrow(index)
        manifest_bytes = manifest.to_bytes()
        config_bytes = json.dumps(config.to_json(), sort_keys=True, indent=2).encode()
        files: dict[str, tuple[bytes | memoryview, list[str]]] = {
            MANIFEST: (manifest_bytes, writer.write(manifest_bytes, MODE_ZSTD)),
            CONFIG: (config_bytes, writer.write(config_bytes, MODE_ZSTD)),
            INDEX: (index_bytes, writer.write(index_bytes, MODE_ZSTD)),
        }
        writer.drain()

        def node(name: str, size: int, content: list[str]) -> dict[str, Any]:
            return {
                "name": name,
                "type": "file",
                "mode": 0o644,
                "mtime_ns": 0,
                "size": size,
                "content": content,
            }

        seg_tree = write_tree(repo, [node(s.name, s.size, s.content) for s in segments])
        root = [node(n, len(data), content) for n, (data, content) in files.items()]
        root.append(
            {
                "name": SEGMENTS,
                "type": "dir",
                "mode": 0o755,
                "mtime_ns": 0,
                "size": 0,
                "subtree": seg_tree,
            }
        )
        tree = write_tree(repo, root)
        repo.flush()
        total_bytes = sum(s.size for s in segments) + sum(len(d) for d, _ in files.values())
        duration = time.perf_counter() - t0
        doc = {
            "version": 1,
            "time": now_iso(),
            "component": component,
            "source": f"{store.url}#{collection}",
            "kind": KIND,
            "host": socket.gethostname(),
            "user": _user(),
            "tree": tree,
            "fingerprint": tree,
            "tags": sorted(tags),
            "parent": base.snapshot.id if base else None,
            "summary": {
                "files": len(files) + len(segments),
                "dirs": 1,
                "bytes": total_bytes,
                "new_blobs": repo.stats["new_blobs"] - before["new_blobs"],
                "new_bytes_stored": repo.stats["new_bytes_stored"] - before["new_bytes_stored"],
                "duration_s": round(duration, 3),
            },
            "meta": {
                "collection": collection,
                "engine": config.engine,
                "engine_version": config.engine_version,
                "records": records,
                "vectors": [v.column for v in config.vectors],
                "dimension": config.vectors[0].dimension,
                "metric": config.vectors[0].metric.value,
                "incremental": base is not None,
                **manifest.stats,
                "cut": cut.to_json(),
            },
        }
        snap = repo.save_snapshot(doc)
    return SnapshotResult(
        snapshot=snap,
        records=records,
        added=added,
        changed=changed,
        deleted=deleted,
        unchanged=unchanged,
        new_segments=len(new_segments),
        carried_segments=n_carried,
        export_s=round(export_s, 3),
        pipeline_s=round(pipeline_s, 3),
        warning=cut.warning,
    )


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid()) if hasattr(os, "getuid") else "unknown"
