"""Snapshots of sources that are not a local directory: the objects under a prefix of
another object store (an S3 dataset), and named in-memory files (vector snapshots,
drkit's state)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from drkit.connectors.objectstore.base import ObjectStore
from drkit.errors import InputError
from drkit.repository.files import Progress, TreeBackup, snapshot_doc
from drkit.repository.patches import Entry
from drkit.repository.pipeline import SMALL_FILE, chunk_bytes
from drkit.repository.repo import Repository
from drkit.repository.snapshot import Snapshot
from drkit.repository.trees import Node, check_name, write_tree


def _noop(_: int) -> None:
    return None


def backup_store(
    repo: Repository,
    source: ObjectStore,
    prefix: str = "",
    *,
    component: str,
    tags: tuple[str, ...] = (),
    meta: dict[str, Any] | None = None,
    progress: Progress | None = None,
) -> Snapshot:
    """Snapshot every object under ``prefix`` of another object store (e.g. an S3 dataset)
    as a file tree. Objects are read in ranged segments; there is no mtime to compare, so
    every object is read again and deduplication keeps what is stored small."""
    started = time.monotonic()
    root = _object_tree(source, prefix)
    with repo.lock(exclusive=False):
        before = dict(repo.stats)
        job = TreeBackup(repo, progress or _noop)
        tree = _write_objects(job, source, root)
        repo.flush()
        summary = {
            "files": job.c.files,
            "dirs": job.c.dirs,
            "bytes": job.c.bytes,
            "new_blobs": repo.stats["new_blobs"] - before["new_blobs"],
            "new_bytes_stored": repo.stats["new_bytes_stored"] - before["new_bytes_stored"],
            "duration_s": round(time.monotonic() - started, 3),
        }
        source_url = source.url.rstrip("/") + ("/" + prefix if prefix else "")
        doc = snapshot_doc(component, source_url, "files", tree, tags, None, summary, meta or {})
        return repo.save_snapshot(doc)


def _object_tree(source: ObjectStore, prefix: str) -> dict[str, Any]:
    """The keys under ``prefix`` as nested dicts (leaves: their ObjectInfo)."""
    root: dict[str, Any] = {}
    for info in source.list(prefix):
        rel = info.key[len(prefix) :].lstrip("/")
        parts = rel.split("/")
        for p in parts:
            check_name(p, info.key)
        d = root
        for p in parts[:-1]:
            d = d.setdefault(p, {})
            if not isinstance(d, dict):
                raise InputError(f"object {info.key!r} clashes with another object name")
        d[parts[-1]] = info
    return root


def _read_object(
    job: TreeBackup, source: ObjectStore, key: str, size: int
) -> tuple[list[Entry], int]:
    if size <= SMALL_FILE:
        return job.small(source.get(key))
    offset = 0

    def readinto(buf: memoryview) -> int:
        nonlocal offset
        data = source.get_range(key, offset, len(buf))
        buf[: len(data)] = data
        offset += len(data)
        return len(data)

    return job.stream(readinto)


def _write_objects(job: TreeBackup, source: ObjectStore, d: dict[str, Any]) -> str:
    """Write one level of :func:`_object_tree` (recursively); returns its tree id."""
    nodes: list[Node] = []
    for name, v in d.items():
        base: Node = {"name": name, "mtime_ns": 0}
        if isinstance(v, dict):
            subtree = _write_objects(job, source, v)
            nodes.append({**base, "type": "dir", "mode": 0o755, "size": 0, "subtree": subtree})
            job.c.dirs += 1
        else:
            content, size = _read_object(job, source, v.key, v.size)
            job.c.files += 1
            job.c.bytes += size
            nodes.append({**base, "type": "file", "mode": 0o644, "size": size, "content": content})
    job.pipe.drain()
    return write_tree(job.repo, nodes)


def snapshot_files(
    repo: Repository,
    component: str,
    files: Mapping[str, bytes],
    *,
    source: str = "",
    kind: str = "files",
    tags: tuple[str, ...] = (),
    parent: str | None = None,
    meta: dict[str, Any] | None = None,
) -> Snapshot:
    """Snapshot named in-memory files (``"dir/name" -> bytes``): vector snapshots, state."""
    root: dict[str, Any] = {}
    for name, data in files.items():
        parts = name.split("/")
        for p in parts:
            check_name(p, name)
        d = root
        for p in parts[:-1]:
            d = d.setdefault(p, {})
            if not isinstance(d, dict):
                raise InputError(f"file name {name!r} clashes with another file")
        d[parts[-1]] = data
    now_ns = time.time_ns()
    total = 0

    def build(d: dict[str, Any]) -> str:
        nonlocal total
        nodes: list[Node] = []
        for name, v in d.items():
            base = {"name": name, "mtime_ns": now_ns}
            if isinstance(v, dict):
                nodes.append({**base, "type": "dir", "mode": 0o755, "size": 0, "subtree": build(v)})
            else:
                total += len(v)
                nodes.append(
                    {
                        **base,
                        "type": "file",
                        "mode": 0o644,
                        "size": len(v),
                        "content": chunk_bytes(repo, v),
                    }
                )
        return write_tree(repo, nodes)

    with repo.lock(exclusive=False):
        before = dict(repo.stats)
        tree = build(root)
        repo.flush()
        summary = {
            "files": len(files),
            "bytes": total,
            "new_blobs": repo.stats["new_blobs"] - before["new_blobs"],
            "new_bytes_stored": repo.stats["new_bytes_stored"] - before["new_bytes_stored"],
        }
        doc = snapshot_doc(component, source, kind, tree, tags, parent, summary, meta or {})
        return repo.save_snapshot(doc)
