"""copy (incremental replication between any two repositories) and repair from a replica.

Blob ids are plaintext hashes and snapshot ids hash the plaintext manifest, so the same
snapshot has the same id everywhere, whatever each repository's key (format section 3).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from drkit.errors import CheckFailed, CorruptObject, ObjectNotFound, RepositoryError
from drkit.repository import codec
from drkit.repository.codec import BlobType
from drkit.repository.files import load_tree
from drkit.repository.index import BlobEntry, Index
from drkit.repository.integrity import heal_records
from drkit.repository.layout import name_of
from drkit.repository.maintenance import (
    check,
    has_patched_chunks,
    iter_tree_blobs,
    verify_pack,
)
from drkit.repository.repo import Repository, pack_key
from drkit.repository.trees import content_blobs

Progress = Callable[[int], None]


def _noop(_: int) -> None:
    return None


@dataclass(slots=True)
class CopyResult:
    snapshots_copied: list[str] = field(default_factory=list)
    snapshots_present: int = 0
    blobs_copied: int = 0
    bytes_copied: int = 0
    #: the same blobs as stored (compressed and encrypted): what crossed the wire
    stored_bytes: int = 0
    #: stored bytes per component (the snapshot that first needed each blob)
    stored_by_component: dict[str, int] = field(default_factory=dict)
    verifications_copied: int = 0
    packs_verified: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "snapshots_copied": self.snapshots_copied,
            "snapshots_present": self.snapshots_present,
            "blobs_copied": self.blobs_copied,
            "bytes_copied": self.bytes_copied,
            "stored_bytes": self.stored_bytes,
            "stored_by_component": self.stored_by_component,
            "verifications_copied": self.verifications_copied,
            "packs_verified": self.packs_verified,
        }


def _transfer(
    src: Repository, dst: Repository, blobs: list[tuple[bool, bytes]], progress: Progress
) -> tuple[int, int]:
    """Read blobs from ``src`` (verified) and write them into ``dst``; returns the bytes
    written, as plaintext and as stored."""
    window: deque[tuple[Future[tuple[bytes, bytes | bytearray | None, int]], bool]] = deque()
    total = stored_total = 0

    def work(bid: bytes) -> tuple[bytes, bytes | bytearray | None, int]:
        data = src.read_blob(bid)
        mode = codec.choose_mode(data[: codec.SAMPLE])
        got, stored = dst.encode_blob(data, mode)
        return got, stored, len(data)

    def finish() -> None:
        nonlocal total, stored_total
        fut, is_tree = window.popleft()
        bid, stored, n = fut.result()
        if stored is not None:
            dst.add_encoded(BlobType.TREE if is_tree else BlobType.DATA, bid, stored, n)
            total += n
            stored_total += len(stored)
        progress(n)

    for is_tree, bid in blobs:
        window.append((src.pool.submit(work, bid), is_tree))
        while len(window) > src.workers * 3 + 2:
            finish()
    while window:
        finish()
    return total, stored_total


def copy(
    src: Repository,
    dst: Repository,
    *,
    snapshot_ids: list[str] | None = None,
    progress: Progress | None = None,
) -> CopyResult:
    """Copy snapshots missing in ``dst`` (only the blobs it lacks), then verify (C1)."""
    progress = progress or _noop
    res = CopyResult()
    with src.lock(exclusive=False), dst.lock(exclusive=False):
        dst.load_index()
        packs_before = set(dst.index.packs())
        # a snapshot the destination forgot on purpose is never brought back
        have = set(dst.snapshot_ids()) | dst.tombstoned("snapshots")
        for sid in snapshot_ids if snapshot_ids is not None else src.snapshot_ids():
            if sid in have:
                res.snapshots_present += 1
                continue
            snap = src.load_snapshot(sid)
            if not dst.patches and src.patches and has_patched_chunks(src, snap):  # PC3
                raise RepositoryError(
                    f"snapshot {sid[:8]} has patched chunks (repository format 2) and "
                    f"{dst.store.url} is a format-{dst.version} repository, which cannot "
                    "hold them",
                    hint="copy into a repository created by this drkit (`drkit copy --to "
                    "NEW_URL --init`)",
                )
            # walk every tree: a crashed writer may have left a tree without its contents
            todo: list[tuple[bool, bytes]] = []
            seen: set[bytes] = set()
            for is_tree, bid in iter_tree_blobs(src, snap):
                if bid in seen:
                    continue
                seen.add(bid)
                if not dst.known(bid):
                    todo.append((is_tree, bid))
            plain, stored = _transfer(src, dst, todo, progress)
            res.bytes_copied += plain
            res.stored_bytes += stored
            by = res.stored_by_component
            by[snap.component] = by.get(snap.component, 0) + stored
            res.blobs_copied += len(todo)
            dst.flush()  # W1, W2: packs and index before the manifest
            doc = src.get_object(f"snapshots/{sid}", name_by_plaintext=True)
            dst.write_record("snapshots", doc)
            res.snapshots_copied.append(sid)
        dst_verifications = dst.ids("verifications/") | dst.tombstoned("verifications")
        dst_snaps = set(dst.snapshot_ids())
        for key, doc in src.verification_docs():
            vid = key.removeprefix("verifications/")
            if vid not in dst_verifications and doc["snapshot"] in dst_snaps:
                dst.write_record("verifications", doc)
                res.verifications_copied += 1
        # C1: read back everything this copy wrote
        new_packs = {p: es for p, es in dst.index.packs().items() if p not in packs_before}
        for name, entries in new_packs.items():
            chk = verify_pack(dst, name, entries)
            if not chk.ok:
                raise CorruptObject(
                    f"verification after copy failed: {chk.errors[0]}", object_id=pack_key(name)
                )
            res.packs_verified += 1
        for sid in res.snapshots_copied:
            for _, bid in iter_tree_blobs(dst, dst.load_snapshot(sid)):
                if not dst.index.has(bid):
                    raise CorruptObject(
                        f"verification after copy failed: blob {bid.hex()[:16]} of snapshot "
                        f"{sid[:8]} is missing in the destination",
                        object_id=bid.hex(),
                    )
    return res


@dataclass(slots=True)
class RepairResult:
    damaged_packs: list[str] = field(default_factory=list)
    damaged_indexes: list[str] = field(default_factory=list)
    blobs_refetched: int = 0
    blobs_salvaged: int = 0
    snapshots_refetched: list[str] = field(default_factory=list)
    records_healed: list[str] = field(default_factory=list)
    records_removed: list[str] = field(default_factory=list)
    unrecoverable: list[str] = field(default_factory=list)
    ok: bool = True

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "damaged_packs": self.damaged_packs,
            "damaged_indexes": self.damaged_indexes,
            "blobs_refetched": self.blobs_refetched,
            "blobs_salvaged": self.blobs_salvaged,
            "snapshots_refetched": self.snapshots_refetched,
            "records_healed": self.records_healed,
            "records_removed": self.records_removed,
            "unrecoverable": self.unrecoverable,
        }


def repair(
    repo: Repository, replica: Repository, *, progress: Progress | None = None
) -> RepairResult:
    """Heal missing or corrupt objects of ``repo`` from ``replica`` (exclusive lock)."""
    res = RepairResult()
    with repo.lock(exclusive=True), replica.lock(exclusive=False):
        healer = _Healer(repo, replica, res)
        old_index_keys = healer.scan_packs(progress or _noop)
        # manifests, verification records and their ledger: from the twin or the replica
        healed, res.records_removed, lost = heal_records(repo, replica)
        res.records_healed = healed
        res.snapshots_refetched = [name_of(k) for k in healed if k.startswith("snapshots/")]
        res.unrecoverable.extend(lost)
        for sid in repo.snapshot_ids():
            try:
                snap = repo.load_snapshot(sid)
            except CorruptObject:
                continue
            healer.heal_tree(snap.tree)
        repo.flush()
        # a full index of the healed state, then drop old indexes and damaged packs (P2)
        repo.write_index_object(dict(repo.index.packs()))
        new_keys = {k for k in repo.loaded_index_keys if k not in old_index_keys}
        repo.delete_objects(k for k in old_index_keys if k not in new_keys)
        repo.delete_objects(pack_key(p) for p in healer.damaged)
        repo.loaded_index_keys = new_keys
    final = check(repo)
    res.ok = final.ok and not res.unrecoverable
    if not res.ok and not res.unrecoverable:
        raise CheckFailed(f"repository still damaged after repair: {final.errors[0]}")
    return res


class _Healer:
    """The state of one repair: damaged packs, what can be salvaged from them."""

    def __init__(self, repo: Repository, replica: Repository, res: RepairResult) -> None:
        self.repo, self.replica, self.res = repo, replica, res
        self.damaged: dict[str, set[bytes]] = {}
        self.salvage: dict[bytes, tuple[str, BlobEntry]] = {}

    def scan_packs(self, progress: Progress) -> set[str]:
        """Verify every pack; keep only intact ones in the index. Returns the index keys
        that the final index replaces."""
        repo, res = self.repo, self.res
        bad_index = repo.load_index()
        res.damaged_indexes = bad_index
        old_index_keys = set(repo.loaded_index_keys) | set(bad_index)
        stored = repo.list_packs()
        indexed = dict(repo.index.packs())
        # packs that no readable index covers: take their entries from the pack header
        for name in stored:
            if name not in indexed:
                try:
                    indexed[name] = repo.read_pack_header(name, stored[name])
                except CorruptObject:
                    res.damaged_packs.append(name)
        self.damaged = {n: set() for n in res.damaged_packs}
        for name, entries in indexed.items():
            chk = verify_pack(repo, name, entries)
            progress(stored.get(name, 0))
            if not chk.ok:
                self.damaged[name] = chk.bad_blobs
                res.damaged_packs.append(name)
        # rebuild the in-memory index from intact packs only
        good = Index()
        for name, entries in indexed.items():
            if name not in self.damaged and name in stored:
                good.add_pack(name, entries)
        self.salvage = {
            e.id: (name, e)
            for name, bad in self.damaged.items()
            for e in indexed.get(name, [])
            if e.id not in bad and name in stored
        }
        repo.index = good
        return old_index_keys

    def fetch(self, bid: bytes, is_tree: bool) -> bool:
        """Rewrite a blob from an intact part of a damaged pack, else from the replica."""
        repo, res = self.repo, self.res
        data: bytes | None = None
        if bid in self.salvage:
            name, e = self.salvage[bid]
            try:
                stored = repo.store.get_range(pack_key(name), e.offset, e.length)
                data = repo.decode_verified(name, e, stored)
                res.blobs_salvaged += 1
            except (CorruptObject, ObjectNotFound):
                data = None
        if data is None:
            try:
                data = self.replica.read_blob(bid)
                res.blobs_refetched += 1
            except CorruptObject:
                res.unrecoverable.append(f"blob {bid.hex()[:16]}")
                return False
        repo.write_blob(data, BlobType.TREE if is_tree else BlobType.DATA)
        return True

    def heal_tree(self, root: str) -> None:
        """Make every blob reachable from ``root`` present again."""
        repo = self.repo
        stack = [root]
        seen: set[str] = set()
        while stack:
            tid = stack.pop()
            if tid in seen:
                continue
            seen.add(tid)
            tb = bytes.fromhex(tid)
            if not repo.known(tb) and not self.fetch(tb, True):
                continue
            if not repo.index.has(tb):
                repo.flush()
            for n in load_tree(repo, tid):
                if n.get("type") == "dir":
                    stack.append(n["subtree"])
                elif n.get("type") == "file":
                    for b in content_blobs(n):
                        bid = bytes.fromhex(b)
                        if not repo.known(bid):
                            self.fetch(bid, False)
