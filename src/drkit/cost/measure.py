"""What a repository really stores, per component: unique bytes after dedup and compression.

Every blob a snapshot reaches (trees and contents) is stored once in a pack, as its
compressed, encrypted ``length`` from the index. A blob shared by several components
(deduplicated across them) is split evenly between them, so the per-component figures add
up to the bytes the snapshots reference. What the repository holds beyond that — pack
headers, the index, snapshot manifests, keys, blobs no snapshot references any more
(until ``prune``) — is its *overhead*; ``total_bytes`` is every object's size, the bill.

``new_bytes(window)`` is what the last ``window`` seconds added: the stored bytes of the
blobs first reached by a snapshot taken in that window. A replica receives exactly
those, so it is the measured egress of one replica over that window.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from drkit.repository import Repository
from drkit.repository.maintenance import iter_tree_blobs

MONTH_S = 30.0 * 86400.0


@dataclass
class RepoUsage:
    """Measured storage of one repository."""

    repository: str
    region: str
    total_bytes: int
    components: dict[str, float] = field(default_factory=dict)  # attributed stored bytes
    new_bytes_month: dict[str, float] = field(default_factory=dict)  # added in the last 30d
    snapshots: int = 0
    oldest: float | None = None  # epoch seconds of the oldest snapshot

    @property
    def referenced_bytes(self) -> float:
        return sum(self.components.values())

    @property
    def overhead_bytes(self) -> float:
        return max(0.0, self.total_bytes - self.referenced_bytes)

    def to_json(self) -> dict[str, Any]:
        return {
            "repository": self.repository,
            "region": self.region,
            "total_bytes": self.total_bytes,
            "referenced_bytes": round(self.referenced_bytes),
            "overhead_bytes": round(self.overhead_bytes),
            "snapshots": self.snapshots,
            "components": {k: round(v) for k, v in sorted(self.components.items())},
            "new_bytes_month": {k: round(v) for k, v in sorted(self.new_bytes_month.items())},
        }


def repository_usage(
    repo: Repository, name: str, region: str, *, now: float | None = None
) -> RepoUsage:
    """Measure ``repo`` (read-only: the index, snapshot manifests and trees)."""
    moment = time.time() if now is None else now
    repo.load_index()
    total = sum(info.size for info in repo.own(""))
    snaps = repo.snapshots()
    owners: dict[bytes, set[str]] = defaultdict(set)
    first_seen: dict[bytes, float] = {}
    for snap in snaps:  # oldest first
        at = snap.datetime.timestamp()
        for _, bid in iter_tree_blobs(repo, snap):
            owners[bid].add(snap.component)
            first_seen.setdefault(bid, at)
    usage = RepoUsage(name, region, total, snapshots=len(snaps))
    usage.oldest = snaps[0].datetime.timestamp() if snaps else None
    for bid, comps in owners.items():
        loc = repo.index.lookup(bid)
        if loc is None:
            continue  # damage is `drkit check`'s business; missing bytes cost nothing
        share = loc.entry.length / len(comps)
        recent = first_seen[bid] >= moment - MONTH_S
        for comp in comps:
            usage.components[comp] = usage.components.get(comp, 0.0) + share
            if recent:
                usage.new_bytes_month[comp] = usage.new_bytes_month.get(comp, 0.0) + share
    return usage
