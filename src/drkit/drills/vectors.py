"""Vector collections for the data scenarios: engines opened once, verified snapshots, faults.

The file-tree counterparts are in :mod:`drkit.drills.data`. A collection's fingerprint
is its count plus ``{id: record hash}`` (:mod:`drkit.replication.vectors.compare`):
the verified snapshot's index holds the same hashes, so detection needs no restore.
Drills never touch the live collection: they copy it into a sandbox collection of the
same engine (a real collection, named with drkit's temporary mark) and corrupt that.
"""

from __future__ import annotations

import math
import random

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from drkit.connectors.vectorstore.base import (
    DOCUMENT,
    ID,
    VectorStore,
    make_batch,
    payloads_of,
)
from drkit.connectors.vectorstore.registry import open_vector_store
from drkit.plan.models import Plan
from drkit.plan.models import VectorStore as VectorStoreModel
from drkit.replication.vectors import KIND, user_collections, vector_snapshots
from drkit.repository import Repository, Snapshot

#: share of the records the fault deletes, and the share whose vectors it overwrites
DELETE_SHARE = 0.1
OVERWRITE_SHARE = 0.1


def vector_components(plan: Plan) -> list[VectorStoreModel]:
    return list(plan.vector_stores)


class Engines:
    """Opens each engine URL once per drill (embedded engines allow one client per
    path) and closes them all in :meth:`close` (the drill's rollback)."""

    def __init__(self) -> None:
        self._open: dict[str, VectorStore] = {}

    def get(self, url: str) -> VectorStore:
        if url not in self._open:
            self._open[url] = open_vector_store(url)
        return self._open[url]

    def close(self) -> None:
        for store in self._open.values():
            store.close()
        self._open.clear()


def collections_of(comp: VectorStoreModel, store: VectorStore) -> list[str]:
    """The plan's collections of ``comp``, else every user collection of its store."""
    return list(comp.collections) or user_collections(store)


def newest_verified_vectors(repo: Repository, component: str, collection: str) -> Snapshot | None:
    """The newest vector snapshot of ``component``/``collection`` with a verification record."""
    verified = {v.snapshot for v in repo.verifications()}
    snaps = [s for s in vector_snapshots(repo, component, collection) if s.id in verified]
    return snaps[-1] if snaps else None


def snapshotted_collections(repo: Repository, component: str) -> list[str]:
    return sorted(
        {str(s.meta.get("collection")) for s in repo.snapshots(component) if s.kind == KIND}
    )


def corrupt_collection(
    store: VectorStore, name: str, ids: list[str], rng: random.Random
) -> tuple[list[str], list[str]]:
    """Delete a seeded share of ``ids`` from ``name`` and overwrite the vectors of another
    share with seeded random ones (payloads and documents kept); returns both id lists."""
    ids = sorted(ids)
    k_del = max(1, math.ceil(len(ids) * DELETE_SHARE))
    k_alt = max(1, math.ceil(len(ids) * OVERWRITE_SHARE)) if len(ids) > 1 else 0
    chosen = rng.sample(ids, min(len(ids), k_del + k_alt))
    deleted, altered = sorted(chosen[:k_del]), sorted(chosen[k_del:])
    store.delete_ids(name, deleted)
    if altered:
        config = store.describe(name)
        wanted = pa.array(altered, pa.string())
        rows = [
            b.filter(pc.is_in(b.column(ID), value_set=wanted))
            for b in store.export(name, batch_size=5000)
        ]
        found = [r for r in rows if len(r)]
        if not found:
            return deleted, []
        batch = pa.Table.from_batches(found).combine_chunks().to_batches()[0]
        gen = np.random.default_rng(rng.randrange(2**32))
        vectors = {
            v.name: gen.standard_normal((len(batch), v.dimension)).astype(np.float32)
            for v in config.vectors
        }
        store.import_batches(
            name,
            [
                make_batch(
                    config,
                    batch.column(ID).to_pylist(),
                    vectors,
                    payloads_of(batch),
                    batch.column(DOCUMENT).to_pylist(),
                )
            ],
        )
    return deleted, altered
