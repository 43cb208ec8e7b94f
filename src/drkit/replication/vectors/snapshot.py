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
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from drkit.connectors.vectorstore.base import ID, CollectionConfig, VectorStore
from drkit.errors import UsageError
from drkit.repository import Repository, Snapshot
from drkit.repository.codec import MODE_ZSTD
from drkit.repository.files import write_tree
from drkit.repository.snapshot import now_iso

from .export_pass import BlobWriter, ExportPass
from .layout import (
    CONFIG,
    DELETED,
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
    with repo.lock(exclusive=False):
        run = ExportPass(repo, config, base, segment_bytes)
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


def _index_and_segments(
    run: ExportPass, base: Opened | None
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
        gone = run.parent.gone() if run.parent is not None else pa.array([], pa.string())
        keep = pa.array(fresh)
        delta = pa.table(
            [
                pa.concat_arrays([ids.combine_chunks().filter(keep), gone.cast(pa.string())]),
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
    writer: BlobWriter,
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
