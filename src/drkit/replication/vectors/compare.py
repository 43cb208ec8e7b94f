"""Compare a live collection with a vector snapshot, record by record.

The fingerprint of a collection is its count plus ``{id: record hash}`` (the same
BLAKE3-128 the snapshot's index holds, :func:`~.layout.record_hashes`), so a
comparison with a snapshot needs no restore: one export of the collection and the
snapshot's index. Engines that re-normalise or round cosine vectors on import
(``normalises_cosine``, ``cosine_roundoff``) give back a copy whose hashes differ by
float rounding; for those, a record whose hash differs is compared with the snapshot's
record within float32 tolerance before it is called altered (cosine vectors of engines
that normalise: by direction — Qdrant local mode (qdrant-client 1.20) exports unit
vectors from the client that wrote them, and the vectors as given once reopened).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from drkit.connectors.vectorstore.base import (
    ID,
    VectorStore,
    vectors_of,
)
from drkit.connectors.vectorstore.transfer import TMP_MARK, map_config
from drkit.repository import Repository

from .layout import record_hash_rows, record_hashes
from .leftovers import OLD_MARK, RESTORED_MARK
from .parent_index import ParentIndex
from .snapshot import Opened, read_records
from .tolerant import Suspects


@dataclass(slots=True)
class CollectionDiff:
    """How a collection differs from a snapshot (ids sorted)."""

    records: int
    missing: list[str] = field(default_factory=list)
    altered: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    #: records whose hash differs only by the engine's float rounding
    tolerated: int = 0
    #: up to ``sample`` vectors of the collection (golden queries)
    sample: list[np.ndarray[Any, Any]] = field(default_factory=list)

    @property
    def damaged(self) -> int:
        """Records of the snapshot that are gone or altered (what corruption looks like)."""
        return len(self.missing) + len(self.altered)

    @property
    def total(self) -> int:
        return self.damaged + len(self.extra)


def user_collections(store: VectorStore) -> list[str]:
    """The store's collections without drkit's temporary ones (restores, drill sandboxes,
    the previous collection kept during a replace), sorted. A collection a replace
    restored behind an alias (``NAME_drkit_restored_...``) is listed under the alias
    the application addresses (the first, if several name it), so backups keep the
    name it had before the replace; one no alias names is a leftover, not listed."""
    named: dict[str, list[str]] = {}
    for alias, coll in store.aliases().items():
        named.setdefault(coll, []).append(alias)
    out = []
    for c in store.list_collections():
        if TMP_MARK in c or OLD_MARK in c:
            continue
        if RESTORED_MARK in c:
            out += sorted(named.get(c, []))[:1]
        else:
            out.append(c)
    return sorted(out)


def collection_fingerprint(
    store: VectorStore, name: str, *, batch_size: int = 5000
) -> dict[str, bytes]:
    """``{id: record hash}`` of every record of ``name`` as the engine exports it now."""
    config = store.describe(name)
    out: dict[str, bytes] = {}
    for batch in store.export(name, batch_size=batch_size):
        out.update(zip(batch.column(ID).to_pylist(), record_hashes(config, batch), strict=True))
    return out


def fingerprint_diff(base: Mapping[str, bytes], current: Mapping[str, bytes]) -> CollectionDiff:
    """Exact comparison of two fingerprints (no tolerance): ``base`` is the snapshot."""
    return CollectionDiff(
        records=len(current),
        missing=sorted(set(base) - set(current)),
        altered=sorted(i for i, h in base.items() if i in current and current[i] != h),
        extra=sorted(set(current) - set(base)),
    )


def snapshot_fingerprint(opened: Opened) -> dict[str, bytes]:
    """``{id: record hash}`` of a snapshot, from its index alone."""
    ix = opened.index
    return dict(zip(ix.column(ID).to_pylist(), ix.column("hash").to_pylist(), strict=True))


def diff_collection(
    repo: Repository,
    opened: Opened,
    store: VectorStore,
    name: str,
    *,
    sample: int = 0,
    batch_size: int = 5000,
    visit: Callable[[pa.RecordBatch], None] | None = None,
) -> CollectionDiff:
    """Compare collection ``name`` of ``store`` with the snapshot ``opened``.

    Reads the snapshot's records only for hash mismatches on approximate engines.
    ``visit`` is shown every exported batch (columns named as in the snapshot).
    """
    m = opened.manifest
    # the snapshot's ids as sorted 64-bit hashes (12 bytes a record, not a dict of
    # Python objects), each exported batch looked up and compared at once
    expected = ParentIndex(opened.index)
    _, renames = map_config(m.config, store)
    back = {new: old for old, new in renames.items()}
    caps = store.capabilities
    approximate = caps.normalises_cosine or caps.cosine_roundoff
    diff = CollectionDiff(records=0)
    with Suspects(len(expected)) as suspects:
        column = m.config.vectors[0].column
        for batch in store.export(name, batch_size=batch_size):
            if back:
                batch = batch.rename_columns([back.get(n, n) for n in batch.schema.names])
            diff.records += len(batch)
            if visit is not None:
                visit(batch)
            if len(diff.sample) < sample:
                diff.sample.extend(vectors_of(batch, column)[: sample - len(diff.sample)])
            hashes = record_hash_rows(m.config, batch)
            pos, known, match = expected.meet(batch.column(ID), hashes)
            differ = ~match
            diff.extra += batch.column(ID).filter(pa.array(differ & ~known)).to_pylist()
            odd = np.flatnonzero(differ & known)
            if approximate:  # compared within tolerance once the export is over
                suspects.add(batch, odd, pos[odd])
            else:
                diff.altered += batch.column(ID).take(pa.array(odd)).to_pylist()
        diff.missing = sorted(expected.gone().to_pylist())
        if len(suspects):  # engines that re-normalise or round cosine vectors
            records = read_records(repo, opened, batch_size=batch_size)
            same = suspects.settle(
                records, expected.find, m.config, by_direction=caps.normalises_cosine
            )
            diff.tolerated = int(same.sum())
            diff.altered += expected.ids.filter(pa.array(suspects.suspected() & ~same)).to_pylist()
    diff.altered.sort()
    diff.extra.sort()
    return diff
