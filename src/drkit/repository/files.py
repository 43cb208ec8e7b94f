"""File-tree snapshots: back up a directory, restore it bit-exact and atomically.

Large files are cut by FastCDC into ~1 MiB chunks; hashing, compression and encryption
run in the repository's thread pool (they release the GIL) while the main thread walks
the tree and chunks. See docs/repository-format.md section 6 for trees and snapshots.
"""

from __future__ import annotations

import io
import os
import stat
import time
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastcdc import fastcdc

from drkit.connectors.objectstore.base import ObjectStore
from drkit.errors import CorruptObject, InputError
from drkit.repository import codec
from drkit.repository.codec import BlobType
from drkit.repository.keyring import host as _host
from drkit.repository.keyring import user as _user
from drkit.repository.repo import Repository
from drkit.repository.restore import RestoreResult, restore
from drkit.repository.snapshot import Snapshot, now_iso
from drkit.repository.trees import (
    Node,
    check_name,
    display,
    list_files,
    load_tree,
    read_file,
    text_fields,
    walk,
    write_tree,
)

__all__ = [
    "RestoreResult",
    "backup_path",
    "backup_store",
    "list_files",
    "load_tree",
    "read_file",
    "restore",
    "snapshot_files",
    "walk",
    "write_tree",
]

SMALL_FILE = 1 << 20
#: Large files are read in segments of this size (chunk boundaries carry over).
SEGMENT = 16 << 20
CDC_MIN, CDC_AVG, CDC_MAX = 256 << 10, 1 << 20, 4 << 20

Progress = Callable[[int], None]
#: Paths of skipped special files (sockets, devices) named in a snapshot's summary.
SKIPPED_SHOWN = 10


def _noop(_: int) -> None:
    return None


#: Blobs smaller than this are encoded on the calling thread: for a few KiB the hand-off
#: to a pool thread (future, queue, wake-up, GIL ping-pong: ~100 us) costs several times
#: the work itself (~25 us), and 3,000 small files made up a fifth of a backup's CPU time.
INLINE_BELOW = 64 << 10

_Encoded = tuple[bytes, bytes | bytearray | None]


class _Done:
    """An already computed result, queued like a future so blobs still finish in order."""

    __slots__ = ("value",)

    def __init__(self, value: _Encoded) -> None:
        self.value = value

    def result(self) -> _Encoded:
        return self.value


class _Pipeline:
    """Encodes blobs in the pool with a bounded window; finishes them in order."""

    def __init__(self, repo: Repository) -> None:
        self.repo = repo
        self.window = repo.workers * 8 + 4
        self.q: deque[tuple[Future[_Encoded] | _Done, int, list[str], int]] = deque()
        self.submitted = 0
        self.finished = 0

    def submit(self, data: bytes | memoryview, mode: int, sink: list[str], idx: int) -> None:
        fut: Future[_Encoded] | _Done
        if len(data) < INLINE_BELOW:
            fut = _Done(self.repo.encode_blob(data, mode))
        else:
            fut = self.repo.pool.submit(self.repo.encode_blob, data, mode)
        self.q.append((fut, len(data), sink, idx))
        self.submitted += 1
        while len(self.q) > self.window:
            self._finish_one()

    def wait_for(self, count: int) -> None:
        """Finish blobs until the first ``count`` submitted ones are done."""
        while self.finished < count and self.q:
            self._finish_one()

    def _finish_one(self) -> None:
        self.finished += 1
        fut, n, sink, idx = self.q.popleft()
        bid, stored = fut.result()
        if stored is not None:
            self.repo.add_encoded(BlobType.DATA, bid, stored, n)
        sink[idx] = bid.hex()

    def drain(self) -> None:
        while self.q:
            self._finish_one()


@dataclass(slots=True)
class _Counters:
    files: int = 0
    dirs: int = 0
    bytes: int = 0
    reused_files: int = 0
    fifos: int = 0
    skipped: int = 0
    skipped_paths: list[str] = field(default_factory=list)


class _Backup:
    def __init__(self, repo: Repository, progress: Progress) -> None:
        self.repo = repo
        self.pipe = _Pipeline(repo)
        self.progress = progress
        self.c = _Counters()
        self.trees: dict[str, list[Node]] = {}
        self._buffers: list[memoryview] = []
        self.buffer_use = [0, 0]

    @property
    def buffers(self) -> list[memoryview]:
        if not self._buffers:  # allocated on the first large file only
            self._buffers = [memoryview(bytearray(SEGMENT + CDC_MAX)) for _ in range(2)]
        return self._buffers

    def parent_nodes(self, tree_id: str | None) -> dict[str, Node]:
        if tree_id is None:
            return {}
        try:
            return {str(n.get("raw_name", n["name"])): n for n in load_tree(self.repo, tree_id)}
        except CorruptObject:
            return {}

    def file(self, path: str, size: int) -> tuple[list[str], int]:
        """Chunk and queue one file; returns its blob ids and the bytes actually read.

        The file is read in segments (not mmapped: a file truncated while mapped would
        kill the process with SIGBUS); a file that changes while it is read is stored as
        read, with its size taken from what was read.
        """
        if size == 0:
            return [], 0
        if size <= SMALL_FILE:
            # plain os calls: open() builds a FileIO and a BufferedReader per file
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                data = os.read(fd, size + 1)
                while len(data) <= size:  # short read (not expected for files)
                    more = os.read(fd, size + 1 - len(data))
                    if not more:
                        break
                    data += more
            finally:
                os.close(fd)
            if len(data) <= size:
                return self.small(data)
        with open(path, "rb") as fh:  # large, or it grew since stat: chunk it
            return self.stream(fh.readinto)

    def small(self, data: bytes) -> tuple[list[str], int]:
        if not data:
            return [], 0
        if len(data) > SMALL_FILE:
            return self.stream(io.BytesIO(data).readinto)
        sink = [""]
        mode = codec.MODE_AUTO if len(data) <= codec.SAMPLE else codec.choose_mode(data)
        self.pipe.submit(data, mode, sink, 0)
        self.progress(len(data))
        return sink, len(data)

    def stream(self, readinto: Callable[[memoryview], int]) -> tuple[list[str], int]:
        """Chunk a stream read by ``readinto`` (which fills the buffer unless at the end)."""
        sink = []
        mode: int | None = None
        carry: memoryview | None = None
        total = 0
        step = 0
        while True:
            # two reused buffers: segment k is read into buffer k % 2 once every blob
            # of segment k - 2 (the buffer's previous content) is finished
            slot = step % 2
            self.pipe.wait_for(self.buffer_use[slot])
            buf = self.buffers[slot]
            head = 0
            if carry is not None:
                head = len(carry)
                buf[:head] = carry
            n = readinto(buf[head : head + SEGMENT])
            eof = n < SEGMENT
            seg = buf[: head + n]
            if mode is None:
                mid = len(seg) // 2
                mode = codec.choose_mode(seg[mid : mid + codec.SAMPLE])
            if not len(seg):
                break
            chunks = list(fastcdc(seg, CDC_MIN, CDC_AVG, CDC_MAX))
            carry = None
            if not eof and len(chunks) > 1:
                last = chunks.pop()  # may be cut by the segment end: carry it over
                carry = seg[last.offset :]
            for ch in chunks:
                sink.append("")
                self.pipe.submit(seg[ch.offset : ch.offset + ch.length], mode, sink, len(sink) - 1)
                self.progress(ch.length)
                total += ch.length
            self.buffer_use[slot] = self.pipe.submitted
            step += 1
            if eof and carry is None:
                break
        self.pipe.drain()
        return sink, total

    def directory(self, path: str, parent_tree: str | None) -> tuple[list[Node], list[str]]:
        """Back up one directory; returns its nodes (content lists may still be filling)."""
        old = self.parent_nodes(parent_tree)
        nodes: list[Node] = []
        subdirs: list[str] = []
        with os.scandir(path) as it:
            entries = sorted(it, key=lambda e: e.name)
        for e in entries:
            st = e.stat(follow_symlinks=False)
            node: Node = {
                **text_fields("name", e.name),
                "mode": stat.S_IMODE(st.st_mode),
                "mtime_ns": st.st_mtime_ns,
            }
            if stat.S_ISLNK(st.st_mode):
                node.update(type="symlink", size=0, **text_fields("target", os.readlink(e.path)))
            elif stat.S_ISFIFO(st.st_mode):
                node.update(type="fifo", size=0)
                self.c.fifos += 1
            elif stat.S_ISDIR(st.st_mode):
                prev = old.get(node.get("raw_name", e.name))
                sub = prev.get("subtree") if prev and prev.get("type") == "dir" else None
                node.update(type="dir", size=0, subtree=self.tree(e.path, sub))
                self.c.dirs += 1
            elif stat.S_ISREG(st.st_mode):
                prev = old.get(node.get("raw_name", e.name))
                node.update(type="file", size=st.st_size)
                self.c.files += 1
                self.c.bytes += st.st_size
                if (
                    prev is not None
                    and prev.get("type") == "file"
                    and prev.get("size") == st.st_size
                    and prev.get("mtime_ns") == st.st_mtime_ns
                    and all(self.repo.blob_exists(b) for b in prev.get("content", []))
                ):
                    node["content"] = list(prev["content"])
                    self.c.reused_files += 1
                    self.progress(st.st_size)
                else:
                    node["content"], node["size"] = self.file(e.path, st.st_size)
            else:  # sockets and devices: not data; counted and named in the summary
                self.c.skipped += 1
                if len(self.c.skipped_paths) < SKIPPED_SHOWN:
                    self.c.skipped_paths.append(display(e.path))
                continue
            nodes.append(node)
        return nodes, subdirs

    def tree(self, path: str, parent_tree: str | None) -> str:
        nodes, _ = self.directory(path, parent_tree)
        self.pipe.drain()  # every content id of this directory is known now
        return write_tree(self.repo, nodes)


def backup_path(
    repo: Repository,
    path: str | Path,
    *,
    component: str | None = None,
    tags: tuple[str, ...] = (),
    parent: str | None = "auto",
    meta: dict[str, Any] | None = None,
    progress: Progress | None = None,
) -> Snapshot:
    """Snapshot a local directory (or a single file). ``parent="auto"`` uses the newest
    snapshot of the same component and source to skip unchanged files (size + mtime)."""
    src = Path(path).absolute()
    try:
        st = src.stat()
    except FileNotFoundError:
        raise InputError(f"backup source {src} does not exist", hint="check the path") from None
    if not (stat.S_ISDIR(st.st_mode) or stat.S_ISREG(st.st_mode)):
        raise InputError(
            f"backup source {display(str(src))} is a {_kind_of(st.st_mode)}, not a file or "
            "directory",
            hint="back up the directory that holds it (a FIFO inside it is recorded as a FIFO)",
        )
    source = display(str(src))
    component = component or display(src.name) or "root"
    started = time.monotonic()
    with repo.lock(exclusive=False):
        parent_snap = None
        if parent == "auto":
            same = [s for s in repo.snapshots(component) if s.source == source]
            parent_snap = same[-1] if same else None
        elif parent is not None:
            parent_snap = repo.find_snapshot(parent)
        before = dict(repo.stats)
        job = _Backup(repo, progress or _noop)
        top: dict[str, Any] = {}
        if stat.S_ISDIR(st.st_mode):
            root = job.tree(str(src), parent_snap.tree if parent_snap else None)
            top = {"mode": stat.S_IMODE(st.st_mode), "mtime_ns": st.st_mtime_ns}
        else:
            content, size = job.file(str(src), st.st_size)
            job.pipe.drain()
            job.c.files, job.c.bytes = 1, size
            node = {
                **text_fields("name", src.name),
                "type": "file",
                "mode": stat.S_IMODE(st.st_mode),
                "mtime_ns": st.st_mtime_ns,
                "size": size,
                "content": content,
            }
            root = write_tree(repo, [node])
        repo.flush()
        summary = {
            "files": job.c.files,
            "dirs": job.c.dirs,
            "bytes": job.c.bytes,
            "reused_files": job.c.reused_files,
            "fifos": job.c.fifos,
            "skipped": job.c.skipped,
            "skipped_paths": job.c.skipped_paths,
            "new_blobs": repo.stats["new_blobs"] - before["new_blobs"],
            "new_bytes_stored": repo.stats["new_bytes_stored"] - before["new_bytes_stored"],
            "duration_s": round(time.monotonic() - started, 3),
        }
        parent_id = parent_snap.id if parent_snap else None
        doc = _snapshot_doc(component, source, "files", root, tags, parent_id, summary, meta or {})
        if top:
            doc["root"] = top
        return repo.save_snapshot(doc)


def _kind_of(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    return "special file"


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
    with repo.lock(exclusive=False):
        before = dict(repo.stats)
        job = _Backup(repo, progress or _noop)

        def read_object(key: str, size: int) -> tuple[list[str], int]:
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

        def build(d: dict[str, Any]) -> str:
            nodes: list[Node] = []
            for name, v in d.items():
                if isinstance(v, dict):
                    nodes.append(
                        {
                            "name": name,
                            "type": "dir",
                            "mode": 0o755,
                            "mtime_ns": 0,
                            "size": 0,
                            "subtree": build(v),
                        }
                    )
                    job.c.dirs += 1
                else:
                    content, size = read_object(v.key, v.size)
                    job.c.files += 1
                    job.c.bytes += size
                    nodes.append(
                        {
                            "name": name,
                            "type": "file",
                            "mode": 0o644,
                            "mtime_ns": 0,
                            "size": size,
                            "content": content,
                        }
                    )
            job.pipe.drain()
            return write_tree(repo, nodes)

        tree = build(root)
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
        doc = _snapshot_doc(component, source_url, "files", tree, tags, None, summary, meta or {})
        return repo.save_snapshot(doc)


def _snapshot_doc(
    component: str,
    source: str,
    kind: str,
    tree: str,
    tags: tuple[str, ...],
    parent: str | None,
    summary: dict[str, Any],
    meta: dict[str, Any],
) -> dict[str, Any]:
    return {
        "version": 1,
        "time": now_iso(),
        "component": component,
        "source": source,
        "kind": kind,
        "host": _host(),
        "user": _user(),
        "tree": tree,
        "fingerprint": tree,
        "tags": sorted(tags),
        "parent": parent,
        "summary": summary,
        "meta": meta,
    }


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
                        "content": _chunk_bytes(repo, v),
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
        doc = _snapshot_doc(component, source, kind, tree, tags, parent, summary, meta or {})
        return repo.save_snapshot(doc)


def _chunk_bytes(repo: Repository, data: bytes) -> list[str]:
    if not data:
        return []
    mode = codec.choose_mode(data[: codec.SAMPLE])
    if len(data) <= SMALL_FILE:
        return [repo.write_blob(data, mode=mode)]
    view = memoryview(data)
    pipe = _Pipeline(repo)
    chunks = list(fastcdc(view, CDC_MIN, CDC_AVG, CDC_MAX))
    sink = [""] * len(chunks)
    for i, ch in enumerate(chunks):
        pipe.submit(view[ch.offset : ch.offset + ch.length], mode, sink, i)
    pipe.drain()
    return sink
