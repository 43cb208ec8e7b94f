"""One conformance suite for every VectorStore, each on its real engine (plus memory)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from drkit.connectors.vectorstore.base import (
    CollectionConfig,
    Metric,
    VectorField,
    VectorStore,
    arrow_schema,
)
from drkit.errors import CollectionExists, CollectionNotFound, IncompatibleTarget

from .data import as_dict, assert_same_records, config, records


def flat(store: VectorStore) -> bool:
    return not store.capabilities.nested_payload


def test_round_trip_exact(store: VectorStore, name: str) -> None:
    cfg = config(name)
    batch = records(cfg, 57, flat=flat(store))
    store.create(cfg)
    assert store.import_batches(name, [batch.slice(0, 30), batch.slice(30)]) == 57
    assert store.count(name) == 57
    stream = store.export(name, batch_size=10)
    batches = list(stream)
    assert all(len(b) <= 10 for b in batches)
    assert all(b.schema == arrow_schema(cfg) for b in batches)
    assert_same_records(as_dict(batches), as_dict([batch]), cfg, [store.capabilities])
    cut = stream.cut
    assert cut.method == store.capabilities.consistent_cut
    assert cut.complete
    assert cut.rows == 57
    assert cut.warning is None


@pytest.mark.parametrize("metric", list(Metric))
def test_describe(store: VectorStore, name: str, metric: Metric) -> None:
    store.create(config(name, dim=6, metric=metric))
    got = store.describe(name)
    assert got.name == name
    assert got.dimension == 6
    assert got.metric is metric
    assert got.engine == store.engine
    assert got.engine_version
    assert name in store.list_collections()
    # the config survives its JSON form (it is stored in snapshots)
    assert CollectionConfig.from_json(got.to_json()) == got


def test_named_vectors(store: VectorStore, name: str) -> None:
    cfg = config(name, dim=8, named=("image", "title"))
    if not store.capabilities.named_vectors:
        with pytest.raises(IncompatibleTarget):
            store.create(cfg)
        assert name not in store.list_collections()
        return
    store.create(cfg)
    described = store.describe(name)
    assert {(v.name, v.dimension, v.metric) for v in described.vectors} == {
        ("", 8, Metric.COSINE),
        ("image", 4, Metric.DOT),
        ("title", 4, Metric.DOT),
    }
    batch = records(cfg, 20, flat=flat(store), seed=3)
    store.import_batches(name, [batch])
    assert_same_records(
        as_dict(store.export(name, batch_size=6)), as_dict([batch]), cfg, [store.capabilities]
    )


def test_import_replaces_whole_record(store: VectorStore, name: str) -> None:
    cfg = config(name, metric=Metric.L2)
    store.create(cfg)
    first = records(cfg, 8, flat=True, seed=1)
    store.import_batches(name, [first])
    second = records(cfg, 4, flat=True, seed=2, start=1)  # ids 1..4, other payloads
    second = second.set_column(
        second.schema.get_field_index("payload"),
        "payload",
        __import__("pyarrow").array(['{"only":1}'] * 4),
    )
    store.import_batches(name, [second])
    got = as_dict(store.export(name))
    assert len(got) == 8
    for rid in second.column("id").to_pylist():
        assert got[rid]["payload"] == {"only": 1}, "old payload keys survived the upsert"
    expected = as_dict([first]) | as_dict([second])
    assert_same_records(got, expected, cfg, [store.capabilities])


def test_delete_ids_idempotent(store: VectorStore, name: str) -> None:
    cfg = config(name, metric=Metric.DOT)
    store.create(cfg)
    batch = records(cfg, 12, flat=flat(store))
    store.import_batches(name, [batch])
    gone = batch.column("id").to_pylist()[:5]
    store.delete_ids(name, [*gone, "never-existed"])
    store.delete_ids(name, gone)
    assert store.count(name) == 7
    assert not set(gone) & set(as_dict(store.export(name)))


def test_empty_collection(store: VectorStore, name: str) -> None:
    store.create(config(name))
    stream = store.export(name)
    assert list(stream) == []
    assert stream.cut.complete
    assert stream.cut.rows == 0
    assert store.count(name) == 0


def test_drop_and_not_found(store: VectorStore, name: str) -> None:
    cfg = config(name)
    store.create(cfg)
    store.drop(name)
    assert name not in store.list_collections()
    batch = records(cfg, 2, flat=True)
    for call in (
        lambda: store.describe(name),
        lambda: store.count(name),
        lambda: store.export(name),
        lambda: store.import_batches(name, [batch]),
        lambda: store.delete_ids(name, ["1"]),
        lambda: store.drop(name),
        lambda: store.rename(name, name + "x"),
    ):
        with pytest.raises(CollectionNotFound):
            call()
    store.drop(name, missing_ok=True)


def test_create_existing_refused(store: VectorStore, name: str) -> None:
    cfg = config(name)
    store.create(cfg)
    store.import_batches(name, [records(cfg, 3, flat=True)])
    with pytest.raises(CollectionExists):
        store.create(cfg)
    assert store.count(name) == 3


def test_incompatible_batch_refused_before_writing(store: VectorStore, name: str) -> None:
    store.create(config(name, dim=8))
    wrong_dim = records(config(name, dim=5), 4, flat=True)
    with pytest.raises(IncompatibleTarget):
        store.import_batches(name, [wrong_dim])
    assert store.count(name) == 0


def test_incompatible_config_refused_before_writing(store: VectorStore, name: str) -> None:
    before = store.list_collections()
    bad = [
        CollectionConfig(name=name, vectors=()),
        CollectionConfig(name=name, vectors=(VectorField("", 0, Metric.L2),)),
    ]
    for cfg in bad:
        with pytest.raises(IncompatibleTarget):
            store.create(cfg)
    assert store.list_collections() == before


@pytest.mark.parametrize("engine", ["chroma", "chroma-http"])
def test_nested_payload_refused_by_flat_engines(
    open_store: Callable[[str], VectorStore], name: str, engine: str
) -> None:
    store = open_store(engine)
    assert not store.capabilities.nested_payload
    cfg = config(name)
    store.create(cfg)
    with pytest.raises(IncompatibleTarget, match="flat metadata"):
        store.import_batches(name, [records(cfg, 4, flat=False)])
    assert store.count(name) == 0


def test_rename(store: VectorStore, name: str) -> None:
    cfg = config(name)
    store.create(cfg)
    batch = records(cfg, 9, flat=flat(store))
    store.import_batches(name, [batch])
    other = name + "r"
    store.create(config(other))
    with pytest.raises(CollectionExists):
        store.rename(name, other)
    store.drop(other)
    store.rename(name, other)
    assert name not in store.list_collections()
    assert_same_records(as_dict(store.export(other)), as_dict([batch]), cfg, [store.capabilities])


@pytest.mark.parametrize("metric", list(Metric))
def test_search_finds_exact_neighbours(store: VectorStore, name: str, metric: Metric) -> None:
    """On a small collection every engine's index answers like brute force."""
    import numpy as np

    from drkit.connectors.vectorstore.base import brute_force_top_k, vectors_of

    cfg = config(name, dim=8, metric=metric)
    store.create(cfg)
    batch = records(cfg, 60, flat=True, seed=11)
    store.import_batches(name, [batch])
    matrix = vectors_of(batch, "vector")
    ids = batch.column("id").to_pylist()
    rng = np.random.default_rng(5)
    for _ in range(3):
        q = rng.standard_normal(8).astype(np.float32)
        expected = [ids[i] for i in brute_force_top_k(matrix, q, metric, 5)]
        assert store.search(name, q.tolist(), 5) == expected
    with pytest.raises(CollectionNotFound):
        store.search(name + "zz", [0.0] * 8, 3)


def test_consistent_cut_under_concurrent_writes(store: VectorStore, name: str) -> None:
    """A write in the middle of an export: engines with a version pin or a transaction do
    not see it; count-check engines report that the cut is not consistent."""
    cfg = config(name, metric=Metric.L2)
    store.create(cfg)
    store.import_batches(name, [records(cfg, 40, flat=True, seed=1)])
    stream = store.export(name, batch_size=10)
    first = next(stream)
    store.import_batches(name, [records(cfg, 5, flat=True, seed=2, start=40)])
    rows = len(first) + sum(len(b) for b in stream)
    assert stream.cut.complete
    if store.capabilities.consistent_cut == "count-check":
        assert stream.cut.warning is not None
        assert "not a consistent cut" in stream.cut.warning
    else:
        assert rows == 40
        assert stream.cut.warning is None
    assert store.count(name) == 45
