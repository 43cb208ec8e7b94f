"""Qdrant local mode: an import into an empty collection (a restore's) runs without an
fsync per point and syncs once at the end; an import into one with points keeps
SQLite's full sync."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa

from drkit.connectors.vectorstore.base import CollectionConfig, Metric, VectorField, make_batch
from drkit.connectors.vectorstore.qdrant import QdrantStore

CFG = CollectionConfig(name="docs", vectors=(VectorField("", 4, Metric.COSINE),))


def _batch(start: int, n: int) -> pa.RecordBatch:
    ids = [f"doc-{i}" for i in range(start, start + n)]
    vecs = np.ones((n, 4), dtype=np.float32)
    return make_batch(CFG, ids, {"": vecs}, [{"n": i} for i in range(n)], ids)


def _synchronous(store: QdrantStore) -> int:
    conn = store._client._client.collections["docs"].storage.storage  # type: ignore[attr-defined]
    return int(conn.execute("PRAGMA synchronous").fetchone()[0])


def _watched(store: QdrantStore, seen: list[int], start: int) -> Iterator[pa.RecordBatch]:
    for k in range(3):
        yield _batch(start + 10 * k, 10)
        seen.append(_synchronous(store))  # after the batch went in, before the next


def test_an_import_into_an_empty_collection_is_synced_once(tmp_path: Path) -> None:
    url = f"qdrant+local://{tmp_path / 'q'}"
    store = QdrantStore(url)
    store.create(CFG)
    before = _synchronous(store)
    seen: list[int] = []
    assert store.import_batches("docs", _watched(store, seen, 0)) == 30
    assert seen == [0, 0, 0]  # OFF while it fills
    assert _synchronous(store) == before  # and put back
    more: list[int] = []
    assert store.import_batches("docs", _watched(store, more, 100)) == 30
    assert more == [before] * 3  # not empty: every point synced as local mode does
    store.close()
    again = QdrantStore(url)
    assert again.count("docs") == 60
    again.close()
