"""Restore a file-tree snapshot into a directory: bit-exact, verified and atomic.

Every blob is read once per pack (one ranged read when the needed blobs make up most of
it), verified (B1), and written into a temporary directory next to the target, which is
renamed into place only at the end. The target is checked before any work: it must be
new or an empty directory, not under a file, and its parent writable.
"""

from __future__ import annotations

import os
import secrets
import shutil
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from drkit.errors import CorruptObject, InputError, ObjectNotFound
from drkit.repository.index import BlobEntry
from drkit.repository.repo import Repository, pack_key
from drkit.repository.snapshot import Snapshot
from drkit.repository.trees import Node, node_text, walk
from drkit.repository.tuning import set_topdir

Progress = Callable[[int], None]


def _noop(_: int) -> None:
    return None


@dataclass(frozen=True, slots=True)
class RestoreResult:
    snapshot: str
    target: str
    files: int
    bytes: int
    duration_s: float
    fifos: int = 0


def restore(
    repo: Repository,
    snapshot: Snapshot | str,
    target: str | Path,
    *,
    progress: Progress | None = None,
) -> RestoreResult:
    """Restore a snapshot into ``target`` (must not exist, or be an empty directory).

    Atomic: everything is written into a temporary directory next to the target and
    renamed into place only after every blob was verified. On any error the temporary
    directory is removed and the target is untouched. The restored top directory gets
    the source directory's mode and mtime when the snapshot recorded them.
    """
    started = time.monotonic()
    snap = snapshot if isinstance(snapshot, Snapshot) else repo.find_snapshot(snapshot)
    dest = Path(target).absolute()
    tmp = _prepare(dest)
    progress = progress or _noop
    try:
        topdir = set_topdir(tmp, True)
        nodes = list(walk(repo, snap.tree))
        total = _restore_into(repo, tmp, nodes, progress)
        if topdir:
            set_topdir(tmp, False)
        root = snap.root
        if "mode" in root:
            os.chmod(tmp, int(root["mode"]))
            os.utime(tmp, ns=(int(root["mtime_ns"]), int(root["mtime_ns"])))
        if dest.exists():
            dest.rmdir()
        os.rename(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    files = sum(1 for _, n in nodes if n["type"] == "file")
    fifos = sum(1 for _, n in nodes if n["type"] == "fifo")
    took = round(time.monotonic() - started, 3)
    return RestoreResult(snap.id, str(dest), files, total, took, fifos)


def _prepare(dest: Path) -> Path:
    """Check the target before any work and create the temporary directory next to it."""
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise InputError(
            f"restore target {dest} exists and is not an empty directory",
            hint="choose a new directory with --to",
        )
    ancestor = dest.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise InputError(
            f"cannot restore into {dest}: {ancestor} is a file, not a directory",
            hint="choose a --to path that is not under a file",
        )
    tmp = dest.parent / f".{dest.name}.drkit-restore-{secrets.token_hex(4)}"
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp.mkdir(mode=0o700)
    except OSError as exc:
        raise InputError(
            f"cannot restore into {dest}: {exc.strerror or exc} ({exc.filename or dest.parent})",
            hint="choose a --to directory on a writable file system that you may write to",
        ) from exc
    return tmp


#: (path, file offset, (mode, mtime_ns) or None, slice start, slice length or -1 for the
#: whole blob: a part of a patched chunk is a slice)
_Target = tuple[str, int, tuple[int, int] | None, int, int]


def _add_entry(
    repo: Repository,
    targets: dict[bytes, list[_Target]],
    rel: str,
    path: str,
    offset: int,
    entry: str | dict[str, object],
    meta: tuple[int, int] | None,
) -> int:
    """Queue one content entry of a file at ``offset``; returns its length."""
    if isinstance(entry, str):
        loc = repo.index.lookup(bytes.fromhex(entry))
        if loc is None:
            raise CorruptObject(f"blob {entry[:16]} of {rel} is not in the index", object_id=entry)
        targets.setdefault(loc.entry.id, []).append((path, offset, meta, 0, -1))
        return loc.entry.raw_length
    start = offset
    parts = entry["parts"]
    assert isinstance(parts, list)
    for b, lo, n in parts:
        loc = repo.index.lookup(bytes.fromhex(b))
        if loc is None:
            raise CorruptObject(f"blob {b[:16]} of {rel} is not in the index", object_id=b)
        if lo < 0 or n <= 0 or lo + n > loc.entry.raw_length:  # PC1
            raise CorruptObject(f"{rel}: a part of a patched chunk lies outside blob {b[:16]}")
        targets.setdefault(loc.entry.id, []).append((path, offset, None, lo, n))
        offset += n
    return offset - start


def _restore_into(
    repo: Repository, root: Path, nodes: list[tuple[str, Node]], progress: Progress
) -> int:
    # (path, offset, meta): single-blob files are created by the worker that writes
    # them, so file creation overlaps with reading and decoding packs; meta is their
    # (mode, mtime_ns), set through the open descriptor right after the write (None for
    # files of several blobs: those get their metadata once every blob is written)
    targets: dict[bytes, list[_Target]] = {}
    total = 0
    for rel, node in nodes:
        path = root / rel
        kind = node["type"]
        if kind == "dir":
            path.mkdir(mode=0o700)
        elif kind == "fifo":
            os.mkfifo(path, 0o600)
        elif kind == "file":
            content = node["content"]
            single = _single(node)
            if not single:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                try:
                    os.ftruncate(fd, int(node["size"]))
                finally:
                    os.close(fd)
            offset = 0
            meta = (int(node["mode"]), int(node["mtime_ns"])) if single else None
            for entry in content:
                offset += _add_entry(repo, targets, rel, str(path), offset, entry, meta)
            if offset != node["size"]:
                raise CorruptObject(f"{rel}: chunk sizes do not add up to the file size")
            total += offset
    by_pack: dict[str, list[BlobEntry]] = {}
    for bid in targets:
        loc = repo.index.lookup(bid)
        assert loc is not None
        by_pack.setdefault(loc.pack, []).append(loc.entry)
    with ThreadPoolExecutor(max(4, repo.workers * 2), thread_name_prefix="drkit-restore") as ex:
        # packs that create many small files first: file creation is fast while the
        # file system is not yet busy writing back the data of the big files
        def creations(item: tuple[str, list[BlobEntry]]) -> int:
            return -sum(1 for e in item[1] for t in targets[e.id] if t[2] is not None)

        futs = [
            ex.submit(_restore_pack, repo, pack, sorted(es, key=lambda e: e.offset), targets)
            for pack, es in sorted(by_pack.items(), key=creations)
        ]
        try:
            for f in futs:
                progress(f.result())
        except BaseException:
            for f in futs:
                f.cancel()
            raise
    # metadata last: links, file modes and times, then directories bottom-up
    for rel, node in nodes:
        path = root / rel
        if node["type"] == "symlink":
            os.symlink(node_text(node, "target"), path)
            os.utime(path, ns=(node["mtime_ns"], node["mtime_ns"]), follow_symlinks=False)
        elif node["type"] == "fifo" or (node["type"] == "file" and not _single(node)):
            os.chmod(path, node["mode"])
            os.utime(path, ns=(node["mtime_ns"], node["mtime_ns"]))
    for rel, node in reversed(nodes):
        if node["type"] == "dir":
            path = root / rel
            os.chmod(path, node["mode"])
            os.utime(path, ns=(node["mtime_ns"], node["mtime_ns"]))
    return total


def _single(node: Node) -> bool:
    """A file of one whole blob: created by the worker that writes it."""
    content = node["content"]
    return len(content) == 1 and isinstance(content[0], str)


def _restore_pack(
    repo: Repository,
    pack: str,
    entries: list[BlobEntry],
    targets: dict[bytes, list[_Target]],
) -> int:
    key = pack_key(pack)
    start = entries[0].offset
    end = entries[-1].offset + entries[-1].length
    needed = sum(e.length for e in entries)
    done = 0
    # one ranged read when the blobs we need make up most of the span
    try:
        span = repo.store.get_range(key, start, end - start) if needed * 2 >= end - start else None
    except ObjectNotFound as exc:
        raise CorruptObject(f"pack {key} is missing", object_id=key) from exc
    for e in entries:
        if span is not None:
            lo = e.offset - start
            stored: bytes | memoryview = memoryview(span)[lo : lo + e.length]
        else:
            try:
                stored = repo.store.get_range(key, e.offset, e.length)
            except ObjectNotFound as exc:
                raise CorruptObject(f"pack {key} is missing", object_id=key) from exc
        plain = repo.verify_blob(pack, e, stored)
        for path, offset, meta, lo, n in targets[e.id]:
            piece = plain if n < 0 else memoryview(plain)[lo : lo + n]
            create = meta is not None
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL if create else os.O_WRONLY
            fd = os.open(path, flags | os.O_CLOEXEC, 0o600)
            try:
                os.pwrite(fd, piece, offset)
                if meta is not None:
                    os.fchmod(fd, meta[0])
                    os.utime(fd, ns=(meta[1], meta[1]))
            finally:
                os.close(fd)
            done += len(piece)
    return done
