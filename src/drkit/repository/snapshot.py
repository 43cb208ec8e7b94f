"""Snapshot manifests and verification records (docs/repository-format.md section 6)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


def canonical(doc: Any) -> bytes:
    """Canonical JSON: sorted keys, no whitespace (its BLAKE3 names the object)."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One snapshot manifest; ``id`` is the BLAKE3 of its canonical JSON."""

    id: str
    time: str
    component: str
    source: str
    kind: str
    host: str
    user: str
    tree: str
    tags: tuple[str, ...] = ()
    parent: str | None = None
    summary: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    #: The source directory's own ``mode`` and ``mtime_ns`` (file-tree snapshots).
    root: dict[str, Any] = field(default_factory=dict)

    @property
    def short_id(self) -> str:
        return self.id[:8]

    @property
    def fingerprint(self) -> str:
        return self.tree

    @property
    def datetime(self) -> datetime:
        return parse_time(self.time)

    def to_doc(self) -> dict[str, Any]:
        return {
            "version": 1,
            "time": self.time,
            "component": self.component,
            "source": self.source,
            "kind": self.kind,
            "host": self.host,
            "user": self.user,
            "tree": self.tree,
            "fingerprint": self.tree,
            "tags": list(self.tags),
            "parent": self.parent,
            "summary": self.summary,
            "meta": self.meta,
            **({"root": self.root} if self.root else {}),
        }

    def to_json(self) -> dict[str, Any]:
        """The manifest plus its id (for ``--json`` output)."""
        return {"id": self.id, **self.to_doc()}

    @classmethod
    def from_doc(cls, sid: str, doc: dict[str, Any]) -> Snapshot:
        return cls(
            id=sid,
            time=str(doc["time"]),
            component=str(doc["component"]),
            source=str(doc["source"]),
            kind=str(doc.get("kind", "files")),
            host=str(doc.get("host", "")),
            user=str(doc.get("user", "")),
            tree=str(doc["tree"]),
            tags=tuple(doc.get("tags", ())),
            parent=doc.get("parent"),
            summary=dict(doc.get("summary", {})),
            meta=dict(doc.get("meta", {})),
            root=dict(doc.get("root", {})),
        )


@dataclass(frozen=True, slots=True)
class Verification:
    """A record that a snapshot was restored and verified (written by ``mark_verified``)."""

    id: str
    snapshot: str
    time: str
    host: str
    details: dict[str, Any]
