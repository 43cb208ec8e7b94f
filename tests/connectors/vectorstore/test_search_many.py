"""``search_many`` answers as one ``search`` per vector, on every engine; an import into
an empty collection keeps the upsert contract where it appends (LanceDB ``add``,
pgvector ``COPY``) instead of upserting."""

from __future__ import annotations

import sys
from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pytest

from drkit.connectors.vectorstore.base import Metric, VectorStore, make_batch
from drkit.connectors.vectorstore.support import SeenIds, last_versions
from drkit.errors import CollectionNotFound

from .data import as_dict, assert_same_records, config, records

QUERIES = 7


def _filled(store: VectorStore, name: str, metric: Metric) -> tuple[str, ...]:
    """A collection of 300 records (named vector ``image`` where the engine has them)."""
    named = ("image",) if store.capabilities.named_vectors else ()
    cfg = config(name, dim=16, metric=metric, named=named)
    store.create(cfg)
    store.import_batches(name, [records(cfg, 300, flat=True, seed=21)])
    return ("", *named)


@pytest.mark.parametrize("metric", [Metric.COSINE, Metric.L2])
def test_search_many_answers_as_search(
    store: VectorStore, name: str, metric: Metric, monkeypatch: pytest.MonkeyPatch
) -> None:
    # three queries per engine call: several calls, the last of one vector
    monkeypatch.setattr(sys.modules[type(store).__module__], "QUERIES_PER_CALL", 3, raising=False)
    fields = _filled(store, name, metric)
    rng = np.random.default_rng(8)
    efforts: list[int | None] = [None, 64] if store.capabilities.search_effort else [None]
    for using in fields:
        dim = 16 if using == "" else 8
        qs = [q.tolist() for q in rng.standard_normal((QUERIES, dim)).astype(np.float32)]
        for effort in efforts:
            kw = {"effort": effort} if effort else {}
            one_by_one = [store.search(name, q, 5, using=using, **kw) for q in qs]
            many = store.search_many(name, qs, 5, using=using, effort=effort)
            assert many == one_by_one, (using, effort)
            assert all(len(found) == 5 for found in many)
            assert len({tuple(f) for f in many}) == QUERIES, "queries got each other's answers"
            backwards = store.search_many(name, qs[::-1], 5, using=using, effort=effort)
            assert backwards == one_by_one[::-1]
            assert store.search_many(name, qs[:1], 5, using=using, effort=effort) == many[:1]


def test_search_many_missing_collection(store: VectorStore, name: str) -> None:
    with pytest.raises(CollectionNotFound):
        store.search_many(name, [[0.0] * 8, [1.0] * 8], 3)
    with pytest.raises(CollectionNotFound):
        store.search_many(name, [], 3)


def test_search_many_of_no_vectors(store: VectorStore, name: str) -> None:
    _filled(store, name, Metric.COSINE)
    assert store.search_many(name, [], 3) == []


def test_repeated_id_across_batches_ends_once_replaced_whole(store: VectorStore, name: str) -> None:
    """One import call into an empty collection, an id in three of its batches: one record,
    the last version (no payload key of an earlier version survives)."""
    cfg = config(name, dim=8, metric=Metric.L2)
    store.create(cfg)
    rng = np.random.default_rng(3)

    def batch(ids: list[str], key: str) -> pa.RecordBatch:
        vecs = rng.standard_normal((len(ids), 8)).astype(np.float32)
        return make_batch(cfg, ids, {"": vecs}, [{key: i} for i in ids], [f"d {key}"] * len(ids))

    batches = [
        batch(["a", "b", "c"], "first"),
        batch(["d", "e"], "second"),
        batch(["b", "f"], "third"),  # b again
        batch(["g"], "fourth"),
        batch(["b", "h"], "fifth"),  # b a third time
    ]
    store.import_batches(name, batches)
    got = as_dict(store.export(name))
    expected: dict[str, dict[str, object]] = {}
    for b in batches:
        expected |= as_dict([b])
    assert_same_records(got, expected, cfg, [store.capabilities])
    assert got["b"]["payload"] == {"fifth": "b"}
    assert store.count(name) == 8


@pytest.mark.parametrize("engine", ["lancedb", "pgvector"])
def test_repeated_id_within_a_batch_keeps_the_last(
    open_store: Callable[[str], VectorStore], engine: str, name: str
) -> None:
    """An id twice in one batch: the last row wins, into an empty table and a full one
    (an append or ``COPY`` would keep both rows or fail; LanceDB's ``merge_insert`` and
    PostgreSQL's ``ON CONFLICT DO UPDATE`` refuse two source rows of one id)."""
    store = open_store(engine)
    cfg = config(name, dim=8, metric=Metric.DOT)
    store.create(cfg)
    vecs = np.arange(32, dtype=np.float32).reshape(4, 8)
    first = make_batch(cfg, ["x", "y", "x", "z"], {"": vecs}, [{"v": i} for i in range(4)])
    store.import_batches(name, [first])
    got = as_dict(store.export(name))
    assert sorted(got) == ["x", "y", "z"]
    assert got["x"]["payload"] == {"v": 2}
    assert got["x"]["vector"] == vecs[2].tolist()
    again = make_batch(cfg, ["y", "y"], {"": vecs[:2]}, [{"w": 0}, {"w": 1}])
    store.import_batches(name, [again])  # into the non-empty table: the upsert path
    got = as_dict(store.export(name))
    assert sorted(got) == ["x", "y", "z"]
    assert got["y"]["payload"] == {"w": 1}


def test_seen_ids_never_forgets() -> None:
    seen = SeenIds()
    written: list[str] = []
    for n in range(60):  # many adds: runs are merged along the way
        ids = [f"id-{n}-{i}" for i in range(n % 7 + 1)]
        assert not seen.any_of(SeenIds.hashes(ids))
        seen.add(SeenIds.hashes(ids))
        written += ids
        assert all(seen.any_of(SeenIds.hashes([w])) for w in written)
    assert seen.any_of(SeenIds.hashes(["nope", written[17]]))
    seen.add(SeenIds.hashes([]))
    assert not seen.any_of(SeenIds.hashes([]))


def test_last_versions() -> None:
    assert last_versions(["a", "b"]) is None
    assert last_versions(["a", "b", "a", "c", "b"]) == [2, 3, 4]
