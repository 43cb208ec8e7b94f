"""How a LanceDB import commits: one version per group of records, however the caller
cut them (a restore hands over ~1,300 records at a time), with upsert order kept."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from drkit.connectors.vectorstore.base import CollectionConfig, Metric, VectorField, make_batch
from drkit.connectors.vectorstore.lancedb import LanceDBStore
from drkit.connectors.vectorstore.support import regroup

CFG = CollectionConfig(name="docs", vectors=(VectorField("", 4, Metric.COSINE),))


def _batch(ids: list[str], fill: float = 1.0) -> pa.RecordBatch:
    vecs = np.full((len(ids), 4), fill, dtype=np.float32)
    return make_batch(CFG, ids, {"": vecs}, [{"n": i} for i in range(len(ids))], ids)


def _ids(start: int, n: int) -> list[str]:
    return [f"doc-{i}" for i in range(start, start + n)]


def test_regroup_gathers_small_batches_and_slices_large_ones() -> None:
    batches = [_batch(_ids(0, 3)), _batch(_ids(3, 11)), _batch(_ids(14, 2))]
    tables = list(regroup(batches, 5))
    assert [len(t) for t in tables] == [5, 5, 5, 1]
    assert [i for t in tables for i in t.column("id").to_pylist()] == _ids(0, 16)
    # gathered, not copied: the first table's first chunk is the first batch's buffer
    first = tables[0].column("id").chunks[0]
    assert first.buffers()[2].address == batches[0].column(0).buffers()[2].address


def test_regroup_closes_a_group_at_its_byte_limit() -> None:
    batches = [_batch(_ids(i * 4, 4)) for i in range(6)]
    per_batch = batches[0].nbytes
    tables = list(regroup(batches, 1000, nbytes=2 * per_batch))
    assert [len(t) for t in tables] == [8, 8, 8]


def test_regroup_of_nothing_is_nothing() -> None:
    assert list(regroup([], 10)) == []


@pytest.fixture
def store(tmp_path: Path) -> Iterator[LanceDBStore]:
    s = LanceDBStore(f"lancedb://{tmp_path / 'lance'}")
    s.create(CFG)
    yield s
    s.close()


def test_an_import_of_many_small_batches_commits_once_per_group(store: LanceDBStore) -> None:
    table = store._table("docs")
    before = table.version
    batches = [_batch(_ids(i * 100, 100)) for i in range(60)]  # 6,000 records
    assert store.import_batches("docs", batches) == 6000
    table.checkout_latest()
    # one commit for the group (max_batch is 50,000) and none per batch; index builds
    # may add their own
    assert table.version - before < 5
    assert store.count("docs") == 6000


def test_a_later_batch_of_the_group_wins_an_id_both_hold(store: LanceDBStore) -> None:
    first = _batch(_ids(0, 3), fill=1.0)
    again = _batch(["doc-1"], fill=2.0)
    assert store.import_batches("docs", [first, again]) == 3
    got = {
        b.column("id")[i].as_py(): b.column("vector")[i].as_py()[0]
        for b in store.export("docs", batch_size=10)
        for i in range(len(b))
    }
    assert got == {"doc-0": 1.0, "doc-1": 2.0, "doc-2": 1.0}
