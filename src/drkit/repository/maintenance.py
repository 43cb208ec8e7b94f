"""check, forget, prune: keeping a repository sound and small.

Ordering rules (docs/repository-format.md section 8) are noted where they apply.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import blake3

from drkit.errors import CorruptObject, ObjectNotFound, RepositoryError, UsageError
from drkit.repository.files import load_tree
from drkit.repository.index import BlobEntry, Index, decode_header, parse_trailer
from drkit.repository.integrity import (
    CheckReport,
    check_foreign_and_leftovers,
    check_keys,
    check_pack_sizes,
    check_records,
    finish_forgets,
    remove_leftovers,
)
from drkit.repository.repo import Repository, pack_key
from drkit.repository.retention import Decision, Policy, apply_policy, named_version
from drkit.repository.snapshot import Snapshot
from drkit.repository.trees import content_blobs

Progress = Callable[[int], None]


def _noop(_: int) -> None:
    return None


@dataclass(slots=True)
class PackCheck:
    name: str
    errors: list[str] = field(default_factory=list)
    bad_blobs: set[bytes] = field(default_factory=set)
    blobs: int = 0

    @property
    def ok(self) -> bool:
        return not self.errors


def verify_pack(repo: Repository, name: str, expected: list[BlobEntry] | None) -> PackCheck:
    """Download a whole pack and verify its name, header and every blob (B1)."""
    key = pack_key(name)
    res = PackCheck(name)
    try:
        data = repo.store.get(key)
    except ObjectNotFound:
        res.errors.append(f"{key}: missing")
        res.bad_blobs = {e.id for e in expected or []}
        return res
    if blake3.blake3(data).hexdigest() != name:
        res.errors.append(f"{key}: content does not match its name (damaged or truncated)")
    entries: list[BlobEntry] = []
    try:
        hlen = parse_trailer(data[-4:]) if len(data) >= 4 else -1
        if hlen < 0 or hlen + 4 > len(data):
            raise ValueError("bad header length")
        entries = decode_header(repo.cipher.decrypt(data[len(data) - 4 - hlen : len(data) - 4]))
    except Exception as exc:
        res.errors.append(f"{key}: unreadable pack header ({type(exc).__name__})")
        entries = list(expected or [])
    if expected is not None:
        have = {(e.id, e.offset, e.length) for e in entries}
        for e in expected:
            if (e.id, e.offset, e.length) not in have:
                res.errors.append(f"{key}: index entry for blob {e.id.hex()[:16]} not in header")
    view = memoryview(data)
    for e in entries:
        res.blobs += 1
        try:
            repo.verify_blob(name, e, view[e.offset : e.offset + e.length])
        except CorruptObject as exc:
            res.errors.append(str(exc))
            res.bad_blobs.add(e.id)
    view.release()
    return res


def referenced_blobs(
    repo: Repository, snaps: list[Snapshot], report: CheckReport | None = None
) -> set[bytes]:
    """Every blob (trees and content) reachable from ``snaps``; damage goes to ``report``
    when given, else raises."""
    used: set[bytes] = set()
    seen_trees: set[str] = set()
    stack = [s.tree for s in snaps]
    while stack:
        tid = stack.pop()
        if tid in seen_trees:
            continue
        seen_trees.add(tid)
        used.add(bytes.fromhex(tid))
        try:
            nodes = load_tree(repo, tid)
        except (CorruptObject, ValueError, KeyError) as exc:
            if report is None:
                raise
            report.errors.append(f"tree {tid[:16]}: {exc}")
            if isinstance(exc, CorruptObject) and exc.object_id:
                report.damaged_objects.add(exc.object_id)
            report.missing_blobs.add(tid)
            continue
        for n in nodes:
            if n.get("type") == "dir":
                stack.append(n["subtree"])
            elif n.get("type") == "file":
                for b in content_blobs(n):
                    bid = bytes.fromhex(b)
                    if bid not in used and not repo.index.has(bid):
                        if report is None:
                            raise CorruptObject(f"blob {b[:16]} is not in the index", object_id=b)
                        report.errors.append(f"blob {b[:16]} referenced by a snapshot is missing")
                        report.missing_blobs.add(b)
                    used.add(bid)
                for e in n.get("content", []):
                    bad = None if isinstance(e, str) else _part_damage(repo, e)
                    if bad is not None:
                        if report is None:
                            raise CorruptObject(bad)
                        report.errors.append(bad)
    return used


def _part_damage(repo: Repository, entry: dict[str, Any]) -> str | None:
    """PC1: every part of a patched chunk lies inside its (indexed) blob."""
    for b, off, n in entry["parts"]:
        loc = repo.index.lookup(bytes.fromhex(b))
        if loc is not None and (off < 0 or n <= 0 or off + n > loc.entry.raw_length):
            return f"patched chunk {entry['id'][:16]}: a part lies outside blob {b[:16]}"
    return None


def check(
    repo: Repository,
    *,
    read_data: bool = False,
    subset: tuple[int, int] | None = None,
    progress: Progress | None = None,
) -> CheckReport:
    """Verify structure; with ``read_data`` (or a ``subset`` n/t of the packs) re-hash data."""
    if read_data and subset:
        raise UsageError(
            "--read-data and --read-data-subset exclude each other",
            hint="pass --read-data for every pack, or --read-data-subset N/T for part of them",
        )
    progress = progress or _noop
    report = CheckReport()
    for key in repo.load_index():
        report.errors.append(f"{key}: index object is damaged")
        report.damaged_objects.add(key)
    stored = repo.list_packs()
    indexed = repo.index.packs()
    report.packs = len(stored)
    for name in indexed:
        if name not in stored:
            report.errors.append(f"{pack_key(name)}: listed in the index but missing")
            report.damaged_objects.add(pack_key(name))
    for name in stored:
        if name not in indexed:
            report.warnings.append(f"{pack_key(name)}: not in any index (run prune to remove)")
    check_pack_sizes(indexed, stored, report)
    check_keys(repo, report)
    check_records(repo, report)
    check_foreign_and_leftovers(repo.store, report)
    snaps: list[Snapshot] = []
    for sid in repo.snapshot_ids():
        try:
            snaps.append(repo.load_snapshot(sid))
        except CorruptObject as exc:
            report.errors.append(str(exc))
            report.damaged_objects.add(f"snapshots/{sid}")
        except ObjectNotFound:
            continue
    report.snapshots = len(snaps)
    referenced_blobs(repo, snaps, report)
    if read_data or subset:
        names = [n for n in indexed if n in stored]
        if subset:
            n, t = subset
            names = [p for p in names if int(p[:8], 16) % t == n - 1]
        with ThreadPoolExecutor(max(2, repo.workers)) as ex:
            for res in ex.map(lambda p: verify_pack(repo, p, indexed[p]), names):
                report.packs_read += 1
                report.blobs_read += res.blobs
                if not res.ok:
                    report.errors.extend(res.errors)
                    report.damaged_objects.add(pack_key(res.name))
                progress(stored.get(res.name, 0))
    return report


@dataclass(slots=True)
class ForgetResult:
    decisions: list[Decision]
    removed: list[str]
    dry_run: bool
    prune: PruneResult | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "keep": [
                {
                    "id": d.snapshot.id,
                    "component": d.snapshot.component,
                    "time": d.snapshot.time,
                    "reasons": d.reasons,
                }
                for d in self.decisions
                if d.keep
            ],
            "remove": [
                {"id": d.snapshot.id, "component": d.snapshot.component, "time": d.snapshot.time}
                for d in self.decisions
                if not d.keep
            ],
            "prune": self.prune.to_json() if self.prune else None,
        }


def forget(
    repo: Repository,
    policy: Policy,
    *,
    components: list[str] | None = None,
    dry_run: bool = False,
    release: Collection[str] = (),
    protected: Mapping[str, str] | None = None,
) -> ForgetResult:
    """Apply a retention policy (P3): deletes snapshot manifests only. Named versions
    (:func:`~drkit.repository.retention.named_version`) are kept whatever the policy,
    except the snapshot ids in ``release``, which go (the user named them). The snapshot
    ids in ``protected`` (id -> reason, e.g. what a model rollback needs) are always kept."""
    with repo.lock(exclusive=True):
        snaps = [s for s in repo.snapshots() if components is None or s.component in components]
        verifications = repo.verifications()
        verified = {v.snapshot for v in verifications}
        versions = {s.id for s in snaps if named_version(s) is not None} - set(release)
        decisions = apply_policy(snaps, policy, verified, versions)
        for d in decisions:
            if d.snapshot.id in release:
                d.keep, d.reasons = False, ["named"]
            if protected and d.snapshot.id in protected:
                d.keep = True
                d.reasons.append(protected[d.snapshot.id])
        removed = [d.snapshot.id for d in decisions if not d.keep]
        if not dry_run:
            gone = set(removed)
            for sid in removed:
                repo.forget_snapshot(sid)
            for v in verifications:
                if v.snapshot in gone:
                    repo.forget_verification(v.id)
        return ForgetResult(decisions, removed, dry_run)


@dataclass(slots=True)
class PruneResult:
    packs_deleted: int = 0
    packs_repacked: int = 0
    packs_kept: int = 0
    blobs_removed: int = 0
    bytes_freed: int = 0
    temp_files_removed: int = 0
    dry_run: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "packs_deleted": self.packs_deleted,
            "packs_repacked": self.packs_repacked,
            "packs_kept": self.packs_kept,
            "blobs_removed": self.blobs_removed,
            "bytes_freed": self.bytes_freed,
            "temp_files_removed": self.temp_files_removed,
            "dry_run": self.dry_run,
        }


def prune(
    repo: Repository,
    *,
    dry_run: bool = False,
    progress: Progress | None = None,
    after_repack: Callable[[], None] | None = None,
) -> PruneResult:
    """Remove unreferenced data under an exclusive lock (P1), in the order of P2."""
    progress = progress or _noop
    res = PruneResult(dry_run=dry_run)
    with repo.lock(exclusive=True):
        bad = repo.load_index()
        if bad:
            raise RepositoryError(
                f"{len(bad)} index objects are damaged ({bad[0]})",
                hint="run `drkit repair --from REPLICA` or `drkit check` first",
            )
        snaps = repo.snapshots()
        used = referenced_blobs(repo, snaps)  # raises on damage: never prune blind
        old_index_keys = set(repo.loaded_index_keys)
        stored = repo.list_packs()
        keep, repack, delete = _plan_prune(repo, used, stored, res)
        res.packs_kept = len(keep)
        res.packs_repacked = len(repack)
        res.packs_deleted = len(delete)
        res.bytes_freed = sum(stored[p] for p in delete) + sum(
            stored[p] - sum(e.length for e in es) for p, es in repack.items()
        )
        if dry_run:
            return res
        # 1. new packs holding the used blobs of partly used packs
        repo.index = Index()
        for pack, entries in keep.items():
            repo.index.add_pack(pack, entries)
        for pack, entries in repack.items():
            data = repo.store.get(pack_key(pack))
            view = memoryview(data)
            for e in entries:
                stored_blob = bytes(view[e.offset : e.offset + e.length])
                repo.verify_blob(pack, e, stored_blob)
                repo.add_encoded(e.type, e.id, stored_blob, e.raw_length)
            view.release()
            progress(stored[pack])
        repo.flush()
        if after_repack:
            after_repack()
        # 2. one index covering every kept and new pack, before anything is deleted
        repo.write_index_object(dict(repo.index.packs()))
        new_keys = set(repo.loaded_index_keys) - old_index_keys
        # 3. old index objects, then 4. old packs
        repo.delete_objects(k for k in old_index_keys if k not in new_keys)
        repo.delete_objects(pack_key(p) for p in [*delete, *repack])
        # verification records of forgotten snapshots
        live = {s.id for s in snaps}
        for v in repo.verifications():
            if v.snapshot not in live:
                repo.forget_verification(v.id)
        finish_forgets(repo)
        res.temp_files_removed = remove_leftovers(repo.store)
        repo.loaded_index_keys = new_keys
    return res


def _plan_prune(
    repo: Repository, used: set[bytes], stored: dict[str, int], res: PruneResult
) -> tuple[dict[str, list[BlobEntry]], dict[str, list[BlobEntry]], list[str]]:
    """Which packs stay whole, which are repacked (their used blobs) and which go."""
    indexed = repo.index.packs()
    placed: set[bytes] = set()
    keep: dict[str, list[BlobEntry]] = {}
    repack: dict[str, list[BlobEntry]] = {}
    delete: list[str] = [p for p in stored if p not in indexed]
    for pack, entries in sorted(indexed.items()):
        if pack not in stored:
            continue
        wanted = [e for e in entries if e.id in used and e.id not in placed]
        placed.update(e.id for e in wanted)
        if len(wanted) == len(entries):
            keep[pack] = entries
        elif wanted:
            repack[pack] = wanted
            res.blobs_removed += len(entries) - len(wanted)
        else:
            delete.append(pack)
            res.blobs_removed += len(entries)
    missing = used - placed
    if missing:
        raise RepositoryError(
            f"{len(missing)} blobs referenced by snapshots are missing",
            hint="run `drkit repair --from REPLICA` before pruning",
        )
    return keep, repack, delete


def has_patched_chunks(repo: Repository, snap: Snapshot) -> bool:
    """True when a file of the snapshot has a patched chunk (format 2 only)."""
    stack, seen = [snap.tree], set()
    while stack:
        tid = stack.pop()
        if tid in seen:
            continue
        seen.add(tid)
        for n in load_tree(repo, tid):
            if n.get("type") == "dir":
                stack.append(n["subtree"])
            elif n.get("type") == "file" and any(
                not isinstance(e, str) for e in n.get("content", [])
            ):
                return True
    return False


def iter_tree_blobs(repo: Repository, snap: Snapshot) -> Iterator[tuple[bool, bytes]]:
    """Yield ``(is_tree, blob id)`` for every blob of a snapshot, trees before contents."""
    stack = [snap.tree]
    seen: set[str] = set()
    while stack:
        tid = stack.pop()
        if tid in seen:
            continue
        seen.add(tid)
        yield True, bytes.fromhex(tid)
        for n in load_tree(repo, tid):
            if n.get("type") == "dir":
                stack.append(n["subtree"])
            elif n.get("type") == "file":
                for b in content_blobs(n):
                    yield False, bytes.fromhex(b)
