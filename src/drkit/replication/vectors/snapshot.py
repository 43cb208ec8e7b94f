"""Snapshot a collection into the repository, full or incremental (reading: ``reading``).

Incremental by per-record hash against the parent snapshot's index: unchanged records
are referenced where the parent stored them (its segment nodes are carried into the new
tree, so no byte is stored again); new and changed records go into new segments;
records missing from the export are deletes. The index is written as a delta against
the parent's (:func:`_index_and_segments`), so with 1% of records changed at random only
those records plus about 60 bytes per changed record are written. When superseded rows
in carried segments outnumber live ones, the next snapshot is written in full
(compaction), so restores never read mostly garbage.

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
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from drkit.connectors.vectorstore.base import ID, CollectionConfig, CutInfo, VectorStore
from drkit.errors import UsageError, VectorStoreError
from drkit.repository import BlobType, Repository, Snapshot
from drkit.repository.codec import MODE_ZSTD, SAMPLE, choose_mode
from drkit.repository.files import write_tree
from drkit.repository.snapshot import now_iso

from .layout import (
    CONFIG,
    DELETED,
    HASH,
    INDEX,
    INDEX_CHAIN,
    INDEX_SCHEMA,
    MANIFEST,
    MAX_DELTAS,
    SEGMENT_BYTES,
    SEGMENTS,
    Manifest,
    Segment,
    encode_arrow,
    pieces,
    record_hashes,
    segment_pieces,
    segment_schema,
)
from .reading import KIND, Opened, Progress, open_snapshot, read_records

__all__ = [
    "KIND",
    "Opened",
    "Progress",
    "SnapshotResult",
    "open_snapshot",
    "read_records",
    "same_shape",
    "snapshot_collection",
    "vector_snapshots",
]

log = logging.getLogger("drkit.replication.vectors")


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
    base = _base(repo, component, collection, parent, full, config)
    with (
        repo.lock(exclusive=False),
        ThreadPoolExecutor(1, thread_name_prefix="drkit-hash") as hasher,
    ):
        run = _Export(repo, config, base, segment_bytes, hasher)
        cut = run.export(store, collection, batch_size, progress, retries)
        export_s = run.export_s
        segments, index_files = _index_and_segments(run, base)
        pipeline_s = time.perf_counter() - t0 - export_s
        manifest = Manifest(
            config=config,
            collection=collection,
            source=store.url,
            records=run.records,
            segments=segments,
            stats=run.stats(len(segments) - len(run.new_segments)),
            cut=cut.to_json(),
            parent=base.snapshot.id if base else None,
        )
        tree, files, own = _write_tree(repo, run.writer, manifest, segments, index_files)
        summary = {
            "files": len(files) + len(segments),
            "dirs": 1,
            "bytes": sum(sg.size for sg in segments) + sum(len(d) for d, _ in files.values()),
            "new_blobs": repo.stats["new_blobs"] - run.before["new_blobs"],
            "new_bytes_stored": repo.stats["new_bytes_stored"] - run.before["new_bytes_stored"],
            # what this snapshot adds to its parent, whatever other snapshots deduplicated
            "snapshot_bytes": own + sum(sg.size for sg in run.new_segments),
            "duration_s": round(time.perf_counter() - t0, 3),
        }
        doc = _doc(store, component, collection, config, manifest, tree, tags, base, summary)
        snap = repo.save_snapshot(doc)
    st = manifest.stats
    return SnapshotResult(
        snapshot=snap,
        records=run.records,
        added=st["added"],
        changed=st["changed"],
        deleted=st["deleted"],
        unchanged=st["unchanged"],
        new_segments=st["new_segments"],
        carried_segments=st["carried_segments"],
        export_s=round(export_s, 3),
        pipeline_s=round(pipeline_s, 3),
        warning=cut.warning,
    )


def _base(
    repo: Repository,
    component: str,
    collection: str,
    parent: Snapshot | str | None,
    full: bool,
    config: CollectionConfig,
) -> Opened | None:
    """The parent to write an incremental snapshot against, or None (a full one)."""
    if parent == "auto":
        previous = vector_snapshots(repo, component, collection)
        parent = previous[-1] if previous else None
    elif isinstance(parent, str):
        parent = repo.find_snapshot(parent)
    if parent is None or full:
        return None
    base = open_snapshot(repo, parent)
    m = base.manifest
    dead = sum(sg.rows for sg in m.segments) - m.records
    if not same_shape(m.config, config) or dead > m.records:
        return None  # config changed, or compaction is due: write in full
    return base


#: index parts: (ids, hashes, segment, row); segment >= 0: new segment number,
#: < 0: -(parent segment + 1)
_Part = tuple[pa.Array, pa.Array, np.ndarray[Any, Any], np.ndarray[Any, Any]]


class _Export:
    """One export of the collection into new segments and index parts, against the
    parent's index (unchanged records are referenced where the parent stored them)."""

    def __init__(
        self,
        repo: Repository,
        config: CollectionConfig,
        base: Opened | None,
        segment_bytes: int,
        hasher: ThreadPoolExecutor,
    ) -> None:
        self.writer = _Writer(repo)
        self.before = dict(repo.stats)
        self.config, self.base, self.hasher = config, base, hasher
        self.segment_bytes = segment_bytes
        self.schema = segment_schema(config)
        self.known: dict[str, tuple[bytes, int, int]] = {}  # parent: id -> (hash, seg, row)
        if base is not None:
            ix = base.index
            self.known = dict(
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
        self.export_s = 0.0
        self.reset()

    def reset(self) -> None:
        self.out: list[_Part] = []
        self.new_segments: list[Segment] = []
        self.pending: list[pa.RecordBatch] = []
        self.pending_bytes = 0
        self.added = self.changed = self.unchanged = 0

    @property
    def records(self) -> int:
        return sum(len(o[0]) for o in self.out)

    @property
    def deleted(self) -> int:
        return len(self.known) - self.unchanged - self.changed

    def stats(self, carried: int) -> dict[str, Any]:
        return {
            "added": self.added,
            "changed": self.changed,
            "deleted": self.deleted,
            "unchanged": self.unchanged,
            "new_segments": len(self.new_segments),
            "carried_segments": carried,
        }

    def export(
        self,
        store: VectorStore,
        collection: str,
        batch_size: int,
        progress: Progress | None,
        retries: int,
    ) -> CutInfo:
        """Export (again while a count-check engine moved, up to ``retries`` times)."""
        for attempt in range(retries + 1):
            self.reset()
            stream = store.export(collection, batch_size=batch_size)
            t_export = time.perf_counter()
            for batch in stream:
                self.export_s += time.perf_counter() - t_export
                self.add(batch)
                if progress:
                    progress(len(batch))
                t_export = time.perf_counter()
            self.flush_segment()
            cut = stream.cut
            all_ids = pa.chunked_array([o[0] for o in self.out], pa.string())
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
            return cut
        raise AssertionError("unreachable")  # the last attempt returns or raises

    def add(self, batch: pa.RecordBatch) -> None:
        hashes = record_hashes(self.config, batch, self.hasher)
        if self.known:
            fresh = self._carry(batch.column(ID).to_pylist(), hashes)
        else:  # a full snapshot: every record is new
            fresh = list(range(len(batch)))
            self.added += len(batch)
        if not fresh:
            return
        part = batch if len(fresh) == len(batch) else batch.take(pa.array(fresh))
        sub = [hashes[i] for i in fresh]
        part = pa.RecordBatch.from_arrays(
            [*part.columns, pa.array(sub, pa.binary(16))], schema=self.schema
        )
        self.pending.append(part)
        self.pending_bytes += part.nbytes
        while self.pending_bytes >= self.segment_bytes:
            per_row = max(1, self.pending_bytes // sum(len(b) for b in self.pending))
            self.flush_segment(max(1, self.segment_bytes // per_row))

    def _carry(self, ids: list[str], hashes: list[bytes]) -> list[int]:
        """Reference unchanged records where the parent has them; the others' rows."""
        fresh: list[int] = []
        c_ids: list[str] = []
        c_hash: list[bytes] = []
        c_seg: list[int] = []
        c_row: list[int] = []
        for i, (rid, h) in enumerate(zip(ids, hashes, strict=True)):
            prev = self.known.get(rid)
            if prev is not None and prev[0] == h:
                c_ids.append(rid)
                c_hash.append(h)
                c_seg.append(-(prev[1] + 1))
                c_row.append(prev[2])
            else:
                fresh.append(i)
                if prev is None:
                    self.added += 1
                else:
                    self.changed += 1
        if c_ids:
            self.unchanged += len(c_ids)
            self.out.append(
                (
                    pa.array(c_ids, pa.string()),
                    pa.array(c_hash, pa.binary(16)),
                    np.array(c_seg, dtype=np.int32),
                    np.array(c_row, dtype=np.int32),
                )
            )
        return fresh

    def flush_segment(self, rows: int | None = None) -> None:
        """Write the first ``rows`` pending rows (default all) as one segment."""
        if not self.pending:
            return
        table = pa.Table.from_batches(self.pending, schema=self.schema)
        rest = None
        if rows is not None and rows < len(table):
            table, rest = table.slice(0, rows), table.slice(rows)
        data = encode_arrow(table)
        content = self.writer.write_parts(segment_pieces(data, self.config))
        seg_no = len(self.new_segments)
        self.new_segments.append(Segment("", content, len(table), len(data)))
        n = len(table)
        self.out.append(
            (
                table.column(ID).combine_chunks(),
                table.column(HASH).combine_chunks(),
                np.full(n, seg_no, dtype=np.int32),
                np.arange(n, dtype=np.int32),
            )
        )
        self.pending = rest.to_batches() if rest is not None else []
        self.pending_bytes = rest.nbytes if rest is not None else 0


def _index_and_segments(
    run: _Export, base: Opened | None
) -> tuple[list[Segment], list[tuple[str, bytes | memoryview | None, dict[str, Any] | None]]]:
    """The manifest's segment table and the index files: ``(name, data, None)`` to write,
    ``(name, None, node)`` to reference (an ancestor's index files in a chain).

    An index delta (only the records added, changed or deleted) is written when the
    parent's chain has room and the delta is small; it keeps the parent's segment table
    as it was (so the parent's row references stay valid) and appends the new segments.
    Otherwise the index is written in full and only the still-referenced parent segments
    are carried (renumbered)."""
    run.writer.drain()
    for sg in run.new_segments:
        sg.name = f"seg-{sg.content[0][:24]}.arrow"
    seg_col = np.concatenate([o[2] for o in run.out]) if run.out else np.zeros(0, np.int32)
    rows = np.concatenate([o[3] for o in run.out]) if run.out else np.zeros(0, np.int32)
    ids = pa.chunked_array([o[0] for o in run.out], pa.string())
    hashes = pa.chunked_array([o[1] for o in run.out], pa.binary(16))
    carried = seg_col < 0
    moved = run.added + run.changed + run.deleted
    if base is not None and len(base.index_nodes) <= MAX_DELTAS and 4 * moved <= run.records:
        n_base = len(base.manifest.segments)
        fresh = ~carried
        gone = sorted(set(run.known) - set(ids.to_pylist()))
        keep = pa.array(fresh)
        delta = pa.table(
            [
                pa.concat_arrays([ids.combine_chunks().filter(keep), pa.array(gone, pa.string())]),
                pa.concat_arrays(
                    [
                        hashes.combine_chunks().filter(keep),
                        pa.array([bytes(16)] * len(gone), pa.binary(16)),
                    ]
                ),
                pa.array(
                    np.concatenate([seg_col[fresh] + n_base, np.full(len(gone), DELETED)]),
                    pa.int32(),
                ),
                pa.array(np.concatenate([rows[fresh], np.zeros(len(gone), np.int32)]), pa.int32()),
            ],
            schema=INDEX_SCHEMA,
        ).sort_by(ID)
        chain: list[tuple[str, bytes | memoryview | None, dict[str, Any] | None]] = [
            (f"index-{i:03d}.arrow", None, node) for i, node in enumerate(base.index_nodes)
        ]
        chain.append((f"index-{len(chain):03d}.arrow", encode_arrow(delta), None))
        return [*base.manifest.segments, *run.new_segments], chain
    # a full index: carried parent segments (still referenced) first, then new ones
    old = -seg_col[carried] - 1
    carried_old = np.unique(old)
    segments = [base.manifest.segments[int(o)] for o in carried_old] if base else []
    seg_col[carried] = np.searchsorted(carried_old, old)
    seg_col[~carried] += len(segments)
    index = pa.table(
        [ids, hashes, pa.array(seg_col, pa.int32()), pa.array(rows, pa.int32())],
        schema=INDEX_SCHEMA,
    ).sort_by(ID)
    return [*segments, *run.new_segments], [(INDEX, encode_arrow(index), None)]


def _node(name: str, size: int, content: list[str]) -> dict[str, Any]:
    return {
        "name": name,
        "type": "file",
        "mode": 0o644,
        "mtime_ns": 0,
        "size": size,
        "content": content,
    }


def _dir(name: str, subtree: str) -> dict[str, Any]:
    return {
        "name": name,
        "type": "dir",
        "mode": 0o755,
        "mtime_ns": 0,
        "size": 0,
        "subtree": subtree,
    }


def _write_tree(
    repo: Repository,
    writer: _Writer,
    manifest: Manifest,
    segments: list[Segment],
    index_files: list[tuple[str, bytes | memoryview | None, dict[str, Any] | None]],
) -> tuple[str, dict[str, tuple[bytes | memoryview, list[str]]], int]:
    """Write manifest, config, index and the trees; returns (tree id, the files written,
    their bytes)."""
    manifest_bytes = manifest.to_bytes()
    config_bytes = json.dumps(manifest.config.to_json(), sort_keys=True, indent=2).encode()
    files: dict[str, tuple[bytes | memoryview, list[str]]] = {
        MANIFEST: (manifest_bytes, writer.write(manifest_bytes, MODE_ZSTD)),
        CONFIG: (config_bytes, writer.write(config_bytes, MODE_ZSTD)),
    }
    written: dict[str, tuple[bytes | memoryview, list[str]]] = {}
    chain: list[dict[str, Any]] = []
    for name, data, node in index_files:
        if data is not None:
            written[name] = (data, writer.write(data, MODE_ZSTD))
        elif node is not None:  # an ancestor's index file: referenced, not stored again
            chain.append({**node, "name": name})
    writer.drain()
    seg_tree = write_tree(repo, [_node(sg.name, sg.size, sg.content) for sg in segments])
    root = [_node(n, len(data), content) for n, (data, content) in files.items()]
    if INDEX in written:
        root.append(_node(INDEX, len(written[INDEX][0]), written[INDEX][1]))
    else:
        chain += [_node(n, len(data), content) for n, (data, content) in written.items()]
        root.append(_dir(INDEX_CHAIN, write_tree(repo, chain)))
    root.append(_dir(SEGMENTS, seg_tree))
    tree = write_tree(repo, root)
    repo.flush()
    files |= written
    return tree, files, sum(len(d) for d, _ in files.values())


def _doc(
    store: VectorStore,
    component: str,
    collection: str,
    config: CollectionConfig,
    manifest: Manifest,
    tree: str,
    tags: tuple[str, ...],
    base: Opened | None,
    summary: dict[str, Any],
) -> dict[str, Any]:
    return {
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
        "summary": summary,
        "meta": {
            "collection": collection,
            "engine": config.engine,
            "engine_version": config.engine_version,
            "records": manifest.records,
            "vectors": [v.column for v in config.vectors],
            "dimension": config.vectors[0].dimension,
            "metric": config.vectors[0].metric.value,
            "incremental": base is not None,
            **manifest.stats,
            "cut": manifest.cut,
        },
    }


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid()) if hasattr(os, "getuid") else "unknown"
