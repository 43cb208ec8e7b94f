"""The parts of ``check`` and ``repair`` beyond packs and trees: keys, the ledger of
snapshots and verification records, tombstones, pack sizes against the index, foreign
objects and the temporary files of interrupted writes (docs/repository-format.md 6a, 8).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import blake3

from drkit.connectors.objectstore.base import ObjectStore
from drkit.errors import CorruptObject, ObjectNotFound
from drkit.repository.crypto import DecryptError, parse_key_file
from drkit.repository.index import BlobEntry
from drkit.repository.layout import is_own_key, name_of
from drkit.repository.records import KINDS, Kind

if TYPE_CHECKING:
    from drkit.repository.repo import Repository

#: ``prune`` removes temporary files older than this. It holds the exclusive lock, so no
#: backup, copy or repair is writing; the age spares the few writes that take no lock
#: (lock files themselves, ``key add``), which finish in well under a second.
LEFTOVER_AGE_S = 3600.0
#: An encrypted unit's overhead (version, nonce, tag) and one pack-header record.
_OVERHEAD = 41
_RECORD = 41


@dataclass(slots=True)
class CheckReport:
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    snapshots: int = 0
    packs: int = 0
    packs_read: int = 0
    blobs_read: int = 0
    damaged_objects: set[str] = field(default_factory=set)
    missing_blobs: set[str] = field(default_factory=set)
    foreign: list[str] = field(default_factory=list)
    temp_files: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def damage(self, key: str, message: str) -> None:
        self.errors.append(message)
        self.damaged_objects.add(key)

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "errors": self.errors,
            "warnings": self.warnings,
            "snapshots": self.snapshots,
            "packs": self.packs,
            "packs_read": self.packs_read,
            "blobs_read": self.blobs_read,
            "damaged_objects": sorted(self.damaged_objects),
            "foreign": self.foreign,
            "temp_files": self.temp_files,
        }


def check_keys(repo: Repository, report: CheckReport) -> None:
    """K3: every key file is named by the hash of its bytes and parses."""
    for info in repo.own("keys/"):
        try:
            data = repo.store.get(info.key)
        except ObjectNotFound:
            continue
        if blake3.blake3(data).hexdigest() != name_of(info.key):
            report.damage(info.key, f"{info.key}: content does not match its name (damaged)")
            continue
        try:
            parse_key_file(data)
        except (DecryptError, ValueError) as exc:
            report.damage(info.key, f"{info.key}: unreadable key file ({exc})")


def check_foreign_and_leftovers(store: ObjectStore, report: CheckReport) -> None:
    for info in store.list(""):
        if not is_own_key(info.key):
            report.foreign.append(info.key)
            report.warnings.append(
                f"{info.key}: foreign object, not part of the repository "
                "(prune and repair leave it alone)"
            )
    for info in store.leftovers():
        report.temp_files.append(info.key)
        report.warnings.append(
            f"{info.key}: temporary file ({info.size} bytes) of an interrupted write; "
            "prune removes it once it is an hour old"
        )


def check_pack_sizes(
    packs: dict[str, list[BlobEntry]], stored: dict[str, int], report: CheckReport
) -> None:
    """A pack's size MUST equal its blobs, header and trailer as the index lists them."""
    for name, entries in packs.items():
        size = stored.get(name)
        if size is None or not entries:
            continue
        blobs = {e.offset: e.length for e in entries}
        end, contiguous = 0, True
        for off in sorted(blobs):
            contiguous = contiguous and off == end
            end = max(end, off + blobs[off])
        want = end + _OVERHEAD + _RECORD * len(blobs) + 4
        if (contiguous and size != want) or size < end + _OVERHEAD + 4:
            key = f"data/{name[:2]}/{name}"
            report.damage(key, f"{key}: {size} bytes, the index says {want} (truncated?)")


def check_records(repo: Repository, report: CheckReport) -> None:
    """Ledger, tombstones and verification records (section 6a)."""
    for kind in KINDS:
        primary, ledger = repo.ids(f"{kind}/"), repo.ids(f"ledger/{kind}/")
        tombs = repo.tombstoned(kind)
        for rid in sorted(ledger):
            _read(repo, f"ledger/{kind}/{rid}", report)
        for rid in sorted(tombs):
            key = f"tombstones/{kind}/{rid}"
            try:
                repo.read_tombstone(key)
            except CorruptObject as exc:
                report.damage(key, str(exc))
            except ObjectNotFound:
                continue
        if kind == "verifications":
            for rid in sorted(primary - tombs):
                _read(repo, f"{kind}/{rid}", report)
        for rid in sorted(ledger - primary - tombs):
            report.damage(
                f"{kind}/{rid}",
                f"{kind}/{rid}: missing; the ledger records it and no tombstone says it was "
                "forgotten (run `drkit repair --from REPLICA`: it rewrites it from the ledger)",
            )
        for rid in sorted(primary - ledger):
            report.warnings.append(
                f"ledger/{kind}/{rid}: missing (an interrupted write, or deleted); "
                "the next `drkit prune` (or `drkit repair`) rewrites it"
            )
        for rid in sorted(primary & tombs):
            report.warnings.append(f"{kind}/{rid}: forgotten, not yet deleted (prune finishes it)")
        for rid in sorted(tombs - ledger):
            report.warnings.append(
                f"ledger/{kind}/{rid}: missing (deleted?); tombstones/{kind}/{rid} says the "
                "record was forgotten, so nothing is lost"
            )


def _read(repo: Repository, key: str, report: CheckReport) -> None:
    try:
        repo.get_object(key, name_by_plaintext=True)
    except CorruptObject as exc:
        report.damage(key, str(exc))
    except ObjectNotFound:
        return


def finish_forgets(repo: Repository) -> None:
    """Delete records whose tombstone was written by a forget that was interrupted, and
    write the ledger entries that a writer killed after its record (or a repository
    from before the ledger) lacks."""
    for kind in KINDS:
        objects, tombs = repo.ids(f"{kind}/"), repo.tombstoned(kind)
        for rid in objects & tombs:
            repo.delete_objects([f"{kind}/{rid}"])
        for rid in sorted(objects - tombs - repo.ids(f"ledger/{kind}/")):
            try:
                stored = repo.store.get(f"{kind}/{rid}")
                repo.decode_object(f"{kind}/{rid}", stored)
            except (CorruptObject, ObjectNotFound):
                continue  # damage is check's and repair's business
            repo.store.put(f"ledger/{kind}/{rid}", stored)


def remove_leftovers(store: ObjectStore, older_than: float = LEFTOVER_AGE_S) -> int:
    n = 0
    for info in list(store.leftovers(older_than)):
        store.remove_leftover(info.key)
        n += 1
    return n


def heal_records(repo: Repository, replica: Repository) -> tuple[list[str], list[str], list[str]]:
    """Rewrite lost or damaged manifests, verification records, ledger entries and
    tombstones from their twin or the replica; returns (healed, removed, unrecoverable).

    A verification record that exists nowhere intact is deleted with its ledger twin
    (it only said "this snapshot was verified": run ``drkit verify`` again)."""
    healed: list[str] = []
    removed: list[str] = []
    lost: list[str] = []
    for kind in KINDS:
        tombs = repo.tombstoned(kind)
        for rid in sorted(tombs):
            key = f"tombstones/{kind}/{rid}"
            try:
                repo.read_tombstone(key)
            except CorruptObject:
                repo.store.delete(key)
                repo.bury(kind, rid)
                healed.append(key)
        for rid in sorted((repo.ids(f"{kind}/") | repo.ids(f"ledger/{kind}/")) - tombs):
            _heal_one(repo, replica, kind, rid, healed, removed, lost)
    return healed, removed, lost


def _heal_one(
    repo: Repository,
    replica: Repository,
    kind: Kind,
    rid: str,
    healed: list[str],
    removed: list[str],
    lost: list[str],
) -> None:
    keys = (f"{kind}/{rid}", f"ledger/{kind}/{rid}")
    good: dict[str, bytes] = {}
    doc: Any = None
    for key in keys:
        try:
            stored = repo.store.get(key)
            doc = repo.decode_object(key, stored)
            good[key] = stored
        except (CorruptObject, ObjectNotFound):
            continue
    if len(good) == 2:
        return
    if good:
        stored = next(iter(good.values()))
    else:
        try:
            doc = replica.get_object(f"{kind}/{rid}", name_by_plaintext=True)
        except (CorruptObject, ObjectNotFound):
            if kind == "verifications":  # nothing intact anywhere: drop both copies
                repo.delete_objects(keys)
                removed.append(f"{kind}/{rid}")
            else:
                lost.append(f"{kind}/{rid}")
            return
        stored = repo.encrypt_doc(doc)[1]
    for key in keys:
        if key not in good:
            repo.store.put(key, stored)
            healed.append(key)
