"""Encrypted JSON objects: snapshot manifests, verification records, their ledger and
tombstones (docs/repository-format.md sections 6 and 6a).

Every manifest and verification record is written twice: ``snapshots/<id>`` (or
``verifications/<id>``) and then the same bytes as ``ledger/snapshots/<id>``; the
ledger entry is never deleted. Forgetting writes ``tombstones/snapshots/<id>`` before it
deletes the manifest. So the set of snapshots is verifiable: a ledger entry with neither
a manifest nor a tombstone is a manifest that was lost (``check`` reports it, ``repair``
rewrites it from the ledger or a replica), and ``copy`` never brings back a snapshot
that a tombstone says was forgotten on purpose.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any, Literal

import blake3
import zstandard

from drkit.connectors.objectstore.base import ObjectInfo, ObjectStore
from drkit.errors import CorruptObject, ObjectNotFound, SnapshotNotFound
from drkit.repository.crypto import Cipher, DecryptError
from drkit.repository.layout import name_of
from drkit.repository.snapshot import Snapshot, Verification, canonical, now_iso

#: The two kinds of record that have a ledger and tombstones.
Kind = Literal["snapshots", "verifications"]
KINDS: tuple[Kind, ...] = ("snapshots", "verifications")
#: What an object's name is the BLAKE3 of: its plaintext, its stored bytes, or (for
#: tombstones) the id of the record it buries.
Naming = Literal["plaintext", "stored", "record"]


class Records:
    """Mixin of :class:`~drkit.repository.repo.Repository`: its encrypted JSON objects."""

    store: ObjectStore
    cipher: Cipher

    def own(self, prefix: str) -> Iterator[ObjectInfo]:  # pragma: no cover - see Repository
        raise NotImplementedError

    def flush(self) -> None:  # pragma: no cover - see Repository
        raise NotImplementedError

    # --- encrypted objects -------------------------------------------------------------

    def encrypt_doc(self, doc: Any) -> tuple[bytes, bytes]:
        """``(canonical plaintext, stored bytes)`` of a JSON document."""
        plain = canonical(doc)
        return plain, self.cipher.encrypt(zstandard.ZstdCompressor(level=3).compress(plain))

    def put_object(self, prefix: str, doc: Any, *, name_by_plaintext: bool) -> str:
        """Encrypt a JSON document and store it under ``prefix/<id>``; returns the id."""
        plain, stored = self.encrypt_doc(doc)
        name = blake3.blake3(plain if name_by_plaintext else stored).hexdigest()
        self.store.put(f"{prefix}/{name}", stored)
        return name

    def get_object(self, key: str, *, name_by_plaintext: bool) -> Any:
        """Fetch, decrypt and verify an object written by :meth:`put_object`."""
        naming: Naming = "plaintext" if name_by_plaintext else "stored"
        return self.decode_object(key, self.store.get(key), naming)

    def decode_object(self, key: str, stored: bytes, naming: Naming = "plaintext") -> Any:
        """Decrypt a stored JSON document; ``naming`` says what its name hashes."""
        name = name_of(key)
        if naming == "stored" and blake3.blake3(stored).hexdigest() != name:
            raise CorruptObject(f"{key}: content does not match its name", object_id=key)
        try:
            plain = zstandard.ZstdDecompressor().decompress(self.cipher.decrypt(stored))
        except (DecryptError, zstandard.ZstdError) as exc:
            raise CorruptObject(f"{key}: fails authentication ({exc})", object_id=key) from exc
        if naming == "plaintext" and blake3.blake3(plain).hexdigest() != name:
            raise CorruptObject(f"{key}: content does not match its name", object_id=key)
        try:
            return json.loads(plain)
        except ValueError as exc:
            raise CorruptObject(f"{key}: not a JSON document", object_id=key) from exc

    # --- records with a ledger (manifests, verification records) ------------------------

    def write_record(self, kind: Kind, doc: Any) -> str:
        """Store ``kind/<id>``, then its ledger entry (same bytes); returns the id."""
        plain, stored = self.encrypt_doc(doc)
        rid = blake3.blake3(plain).hexdigest()
        self.store.put(f"{kind}/{rid}", stored)
        self.store.put(f"ledger/{kind}/{rid}", stored)
        return rid

    def ids(self, prefix: str) -> set[str]:
        return {name_of(i.key) for i in self.own(prefix)}

    def tombstoned(self, kind: Kind) -> set[str]:
        return self.ids(f"tombstones/{kind}/")

    def bury(self, kind: Kind, rid: str) -> None:
        """Forget a record: its tombstone first, then the object (the ledger stays)."""
        doc = {"id": rid, "kind": kind, "time": now_iso(), "host": socket.gethostname()}
        self.store.put(f"tombstones/{kind}/{rid}", self.encrypt_doc(doc)[1])
        self.store.delete(f"{kind}/{rid}")

    def read_tombstone(self, key: str) -> dict[str, Any]:
        doc = self.decode_object(key, self.store.get(key), "record")
        if not isinstance(doc, dict) or doc.get("id") != name_of(key):
            raise CorruptObject(f"{key}: tombstone does not name its record", object_id=key)
        return doc

    # --- snapshots -----------------------------------------------------------------------

    def save_snapshot(self, doc: dict[str, Any]) -> Snapshot:
        """Write a manifest, after flushing its blobs and index (W2)."""
        self.flush()
        return Snapshot.from_doc(self.write_record("snapshots", doc), doc)

    def snapshot_ids(self) -> list[str]:
        """Ids of the live snapshots (a manifest and no tombstone)."""
        buried = self.tombstoned("snapshots")
        return [i for i in self.ids("snapshots/") if i not in buried]

    def load_snapshot(self, sid: str) -> Snapshot:
        doc = self.get_object(f"snapshots/{sid}", name_by_plaintext=True)
        return Snapshot.from_doc(sid, doc)

    def snapshots(self, component: str | None = None) -> list[Snapshot]:
        """All snapshots (oldest first), optionally of one component."""
        out = []
        for sid in self.snapshot_ids():
            try:
                snap = self.load_snapshot(sid)
            except ObjectNotFound:
                continue  # forgotten meanwhile
            if component is None or snap.component == component:
                out.append(snap)
        return sorted(out, key=lambda s: (s.time, s.id))

    def find_snapshot(self, ref: str, component: str | None = None) -> Snapshot:
        """Resolve an id, a unique id prefix, or ``latest``."""
        if ref == "latest":
            snaps = self.snapshots(component)
            if not snaps:
                raise SnapshotNotFound(
                    "the repository has no snapshots"
                    + (f" of component {component!r}" if component else "")
                )
            return snaps[-1]
        ids = [s for s in self.snapshot_ids() if s.startswith(ref)]
        if len(ids) != 1 or not ref:
            what = "no snapshot" if not ids else f"{len(ids)} snapshots"
            raise SnapshotNotFound(f"{what} match {ref!r}")
        return self.load_snapshot(ids[0])

    def forget_snapshot(self, sid: str) -> None:
        self.bury("snapshots", sid)

    # --- verification records ------------------------------------------------------------

    def mark_verified(self, snapshot_id: str, details: dict[str, Any] | None = None) -> str:
        """Record that a snapshot was restored and verified; returns the record id.

        Called by `drkit verify`, the vector-store restore test and drills. The newest
        verified snapshot of each component is never forgotten.
        """
        snap = self.find_snapshot(snapshot_id)
        doc = {
            "snapshot": snap.id,
            "time": now_iso(),
            "host": socket.gethostname(),
            "details": details or {},
        }
        return self.write_record("verifications", doc)

    def verifications(self, damaged: list[str] | None = None) -> list[Verification]:
        """The readable verification records (oldest first); a damaged one is skipped
        and its key appended to ``damaged`` (``check`` reports it, ``repair`` heals it)."""
        out = []
        for key, doc in self.verification_docs(damaged):
            out.append(
                Verification(
                    name_of(key), doc["snapshot"], doc["time"], doc["host"], doc["details"]
                )
            )
        return sorted(out, key=lambda v: v.time)

    def verification_docs(
        self, damaged: list[str] | None = None
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        buried = self.tombstoned("verifications")
        for info in self.own("verifications/"):
            if name_of(info.key) in buried:
                continue
            try:
                doc = self.get_object(info.key, name_by_plaintext=True)
                if not isinstance(doc, dict) or not {"snapshot", "time", "host"} <= set(doc):
                    raise CorruptObject(f"{info.key}: not a verification record")
                doc.setdefault("details", {})
            except ObjectNotFound:
                continue
            except CorruptObject:
                if damaged is not None:
                    damaged.append(info.key)
                continue
            yield info.key, doc

    def forget_verification(self, vid: str) -> None:
        self.bury("verifications", vid)
