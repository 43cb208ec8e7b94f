"""An export that meets a record twice (the collection changed under it) is exported
again, and refused if it keeps doing so: no snapshot holds an id twice."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pytest

from drkit.connectors.vectorstore.base import CollectionConfig, Metric, VectorField, make_batch
from drkit.connectors.vectorstore.memory import MemoryVectorStore
from drkit.connectors.vectorstore.stream import ExportStream
from drkit.errors import VectorStoreError
from drkit.replication.vectors import snapshot_collection
from drkit.repository import Repository

CFG = CollectionConfig(name="docs", vectors=(VectorField("", 4, Metric.COSINE),))


class Repeating(MemoryVectorStore):
    """Its first ``bad`` exports hand the first batch over twice."""

    def __init__(self, url: str, bad: int) -> None:
        super().__init__(url)
        self.bad, self.exports = bad, 0

    def export(self, name: str, *, batch_size: int = 1000) -> ExportStream:
        stream = super().export(name, batch_size=batch_size)
        self.exports += 1
        if self.exports > self.bad:
            return stream

        def again() -> Iterator[pa.RecordBatch]:
            first = None
            for batch in stream:
                first = first or batch
                yield batch
            if first is not None:
                yield first

        return ExportStream(again(), stream.cut)


def _filled(bad: int) -> Repeating:
    store = Repeating(f"memory://repeats-{bad}", bad)
    store.create(CFG)
    ids = [f"doc-{i}" for i in range(30)]
    vecs = np.ones((30, 4), dtype=np.float32)
    store.import_batches("docs", [make_batch(CFG, ids, {"": vecs}, [{}] * 30, ids)])
    return store


def test_an_export_that_repeats_once_is_exported_again(repo: Repository) -> None:
    store = _filled(bad=1)
    res = snapshot_collection(repo, store, "docs", component="kb", batch_size=10)
    assert store.exports == 2
    assert res.records == 30


def test_an_export_that_keeps_repeating_is_refused(repo: Repository) -> None:
    store = _filled(bad=10)
    with pytest.raises(VectorStoreError, match="returned an id twice"):
        snapshot_collection(repo, store, "docs", component="kb", batch_size=10, retries=2)
    assert store.exports == 3
    assert repo.snapshots() == []
