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
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastcdc import fastcdc

from drkit.errors import CorruptObject, InputError
from drkit.repository import codec
from drkit.repository.keyring import host as _host
from drkit.repository.keyring import user as _user
from drkit.repository.patches import BaseMap, Entry
from drkit.repository.pipeline import (
    CDC_AVG,
    CDC_MAX,
    CDC_MIN,
    SEGMENT,
    SMALL_FILE,
    BlobPipeline,
)
from drkit.repository.repo import Repository
from drkit.repository.restore import RestoreResult, restore
from drkit.repository.snapshot import Snapshot, now_iso
from drkit.repository.trees import (
    Node,
    content_blobs,
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
    "list_files",
    "load_tree",
    "read_file",
    "restore",
    "walk",
    "write_tree",
]

Progress = Callable[[int], None]
#: Paths of skipped special files (sockets, devices) named in a snapshot's summary.
SKIPPED_SHOWN = 10


def _noop(_: int) -> None:
    return None


@dataclass(slots=True)
class _Counters:
    files: int = 0
    dirs: int = 0
    bytes: int = 0
    reused_files: int = 0
    fifos: int = 0
    skipped: int = 0
    skipped_paths: list[str] = field(default_factory=list)


class TreeBackup:
    def __init__(self, repo: Repository, progress: Progress) -> None:
        self.repo = repo
        self.pipe = BlobPipeline(repo)
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

    def file(
        self, path: str, size: int, parent: list[Entry] | None = None
    ) -> tuple[list[Entry], int]:
        """Chunk and queue one file; returns its content entries and the bytes read.

        The file is read in segments (not mmapped: a file truncated while mapped would
        kill the process with SIGBUS); a file that changes while it is read is stored as
        read, with its size taken from what was read. ``parent``: the content of the
        file in the parent snapshot; in a format-2 repository, chunks that changed only
        in places are stored as patched chunks against it.
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
        base = None
        if parent and self.repo.patches:
            base = BaseMap.build(self.repo, parent)
        with open(path, "rb") as fh:  # large, or it grew since stat: chunk it
            return self.stream(fh.readinto, base)

    def small(self, data: bytes) -> tuple[list[Entry], int]:
        if not data:
            return [], 0
        if len(data) > SMALL_FILE:
            return self.stream(io.BytesIO(data).readinto)
        sink: list[Entry] = [""]
        mode = codec.MODE_AUTO if len(data) <= codec.SAMPLE else codec.choose_mode(data)
        self.pipe.submit(data, mode, sink, 0)
        self.progress(len(data))
        return sink, len(data)

    def stream(
        self, readinto: Callable[[memoryview], int], base: BaseMap | None = None
    ) -> tuple[list[Entry], int]:
        """Chunk a stream read by ``readinto`` (which fills the buffer unless at the end)."""
        sink: list[Entry] = []
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
                chunk = seg[ch.offset : ch.offset + ch.length]
                at = (base, total) if base is not None else None
                self.pipe.submit(chunk, mode, sink, len(sink) - 1, at)
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
                    and all(self.repo.blob_exists(b) for b in content_blobs(prev))
                ):
                    node["content"] = list(prev["content"])
                    self.c.reused_files += 1
                    self.progress(st.st_size)
                else:
                    was = prev.get("content") if prev and prev.get("type") == "file" else None
                    node["content"], node["size"] = self.file(e.path, st.st_size, was)
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
        job = TreeBackup(repo, progress or _noop)
        top: dict[str, Any] = {}
        if stat.S_ISDIR(st.st_mode):
            root = job.tree(str(src), parent_snap.tree if parent_snap else None)
            top = {"mode": stat.S_IMODE(st.st_mode), "mtime_ns": st.st_mtime_ns}
        else:
            old = job.parent_nodes(parent_snap.tree if parent_snap else None)
            prev = old.get(text_fields("name", src.name).get("raw_name", src.name))
            was = prev.get("content") if prev and prev.get("type") == "file" else None
            content, size = job.file(str(src), st.st_size, was)
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
        doc = snapshot_doc(component, source, "files", root, tags, parent_id, summary, meta or {})
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


def snapshot_doc(
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
