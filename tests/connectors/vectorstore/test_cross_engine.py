"""Every engine into at least one other, through the canonical format, compared exactly."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from drkit.connectors.vectorstore.base import Metric, VectorStore
from drkit.connectors.vectorstore.transfer import copy_collection, load_collection, temp_name
from drkit.errors import CollectionExists, IncompatibleTarget

from .data import as_dict, assert_same_records, config, records

PAIRS = [
    ("chroma", "qdrant"),
    ("lancedb", "pgvector"),
    ("qdrant", "milvus"),
    ("pgvector", "lancedb"),
    ("milvus", "chroma-http"),
    ("chroma-http", "memory"),
    ("memory", "chroma"),
]


@pytest.mark.parametrize(("src_engine", "dst_engine"), PAIRS, ids=[f"{a}->{b}" for a, b in PAIRS])
@pytest.mark.parametrize("metric", [Metric.COSINE, Metric.L2])
def test_cross_engine_round_trip(
    open_store: Callable[[str], VectorStore],
    name: str,
    src_engine: str,
    dst_engine: str,
    metric: Metric,
) -> None:
    src, dst = open_store(src_engine), open_store(dst_engine)
    cfg = config(name, metric=metric)
    batch = records(cfg, 40, flat=True, seed=7)
    src.create(cfg)
    src.import_batches(name, [batch])
    target = name + "x"
    assert copy_collection(src, name, dst, target, batch_size=9) == 40
    described = dst.describe(target)
    assert (described.dimension, described.metric) == (8, metric)
    got = as_dict(dst.export(target, batch_size=11))
    assert_same_records(got, as_dict([batch]), cfg, [src.capabilities, dst.capabilities])
    assert not [c for c in dst.list_collections() if "_drkit_tmp_" in c]


def test_named_vectors_refused_by_single_vector_engine(
    open_store: Callable[[str], VectorStore], name: str
) -> None:
    src, dst = open_store("qdrant"), open_store("chroma")
    cfg = config(name, named=("image",))
    src.create(cfg)
    src.import_batches(name, [records(cfg, 5, flat=True)])
    with pytest.raises(IncompatibleTarget, match="named vectors"):
        copy_collection(src, name, dst)
    assert dst.list_collections() == []


def test_single_named_vector_maps_to_default(
    open_store: Callable[[str], VectorStore], name: str
) -> None:
    """A pgvector table whose only vector column is not 'embedding' goes into Chroma."""
    from drkit.connectors.vectorstore.base import CollectionConfig, VectorField

    src, dst = open_store("pgvector"), open_store("chroma")
    cfg = CollectionConfig(name=name, vectors=(VectorField("emb", 4, Metric.DOT),))
    src.create(cfg)
    batch = records(cfg, 6, flat=True)
    src.import_batches(name, [batch])
    copy_collection(src, name, dst)
    got = dst.export(name)
    rows = as_dict(got)
    expected = as_dict([batch])
    for rid, row in expected.items():
        assert rows[rid]["vector"] == row["vector.emb"]
        assert rows[rid]["payload"] == row["payload"]


def test_load_is_all_or_nothing(open_store: Callable[[str], VectorStore], name: str) -> None:
    """A failing import leaves neither the final nor the temporary collection behind."""
    dst = open_store("chroma")
    cfg = config(name)
    good = records(cfg, 10, flat=True)
    nested = records(cfg, 10, flat=False, start=10)  # chroma refuses nested payloads
    with pytest.raises(IncompatibleTarget):
        load_collection(dst, cfg, [good, nested], name)
    assert dst.list_collections() == []
    dst.create(cfg)
    with pytest.raises(CollectionExists):
        load_collection(dst, cfg, [good], name)
    assert dst.count(name) == 0


def test_temp_names_valid_everywhere() -> None:
    for raw in ["docs", "my-docs.v2", "0start", "ünï", "x" * 300]:
        t = temp_name(raw)
        assert t[0].isalpha()
        assert len(t) <= 63
        assert t.replace("_", "").isalnum()


@pytest.mark.parametrize(
    ("engine", "bad"), [("milvus", "my-docs"), ("chroma", "a"), ("pgvector", "x" * 64)]
)
def test_invalid_target_name_refused_before_writing(
    open_store: Callable[[str], VectorStore], name: str, engine: str, bad: str
) -> None:
    dst = open_store(engine)
    before = dst.list_collections()
    cfg = config(name)
    with pytest.raises(IncompatibleTarget, match="name"):
        load_collection(dst, cfg, [records(cfg, 3, flat=True)], bad)
    assert dst.list_collections() == before


def test_what_a_cross_engine_load_cannot_carry_is_reported(
    open_store: Callable[[str], VectorStore], name: str, caplog: pytest.LogCaptureFixture
) -> None:
    from drkit.connectors.vectorstore.transfer import not_carried

    src, same, other = open_store("pgvector"), open_store("pgvector"), open_store("chroma")
    cfg = config(name)
    src.create(cfg)
    src.import_batches(name, [records(cfg, 3, flat=True)])
    described = src.describe(name)
    assert not_carried(described, same) == []
    notes = not_carried(described, other)
    assert any("index parameters" in n for n in notes)
    assert any("typed columns" in n for n in notes)
    with caplog.at_level("WARNING", logger="drkit.vectorstore"):
        copy_collection(src, name, other)
    assert "typed columns" in caplog.text


def test_sparse_vectors_carried_between_qdrant_and_milvus(
    open_store: Callable[[str], VectorStore], name: str, tmp_path: Path
) -> None:
    """Hybrid search survives the move: Qdrant's sparse vectors become Milvus
    SPARSE_FLOAT_VECTOR fields (searchable there), and come back to Qdrant as sparse
    vectors; nothing is reported as left in the payload."""
    from qdrant_client import models

    from drkit.connectors.vectorstore.transfer import not_carried

    q = open_store("qdrant")
    client: Any = q._client  # type: ignore[attr-defined]
    client.create_collection(
        name,
        vectors_config={"dense": models.VectorParams(size=2, distance=models.Distance.DOT)},
        sparse_vectors_config={"bm25": models.SparseVectorParams()},
    )
    client.upsert(
        name,
        points=[
            models.PointStruct(
                id=i,
                vector={
                    "dense": [1.0, float(i)],
                    "bm25": models.SparseVector(indices=[i, 100 + i], values=[0.5, 1.25 * i]),
                },
                payload={"lang": "en"},
            )
            for i in range(6)
        ],
    )
    m = open_store("milvus")
    assert not [n for n in not_carried(q.describe(name), m) if "sparse" in n]
    copy_collection(q, name, m, "hybrid")
    mc: Any = m._client  # type: ignore[attr-defined]
    fields = {f["name"]: f["type"] for f in mc.describe_collection("hybrid")["fields"]}
    from pymilvus import DataType

    assert fields["bm25"] == DataType.SPARSE_FLOAT_VECTOR
    mc.load_collection("hybrid")
    hits = mc.search("hybrid", [{103: 1.0}], anns_field="bm25", limit=1, output_fields=["id"])
    assert [h["entity"]["id"] for h in hits[0]] == ["3"]
    got = as_dict(m.export("hybrid"))
    assert got["3"]["payload"] == {
        "lang": "en",
        "__drkit_sparse.bm25": {"indices": [3, 103], "values": [0.5, 3.75]},
    }
    back = open_store("qdrant")
    copy_collection(m, "hybrid", back, name)
    point = back._client.retrieve(name, [3], with_vectors=True)[0]  # type: ignore[attr-defined]
    assert point.vector["bm25"] == models.SparseVector(indices=[3, 103], values=[0.5, 3.75])
    # Milvus has no empty sparse vector: a point without one is refused, nothing written
    client.upsert(name, points=[models.PointStruct(id=6, vector={"dense": [0.5, 0.5]})])
    with pytest.raises(IncompatibleTarget, match="no sparse vector 'bm25'"):
        copy_collection(q, name, m, "hybrid3")
    assert "hybrid3" not in m.list_collections()
    assert not [c for c in m.list_collections() if "_drkit_tmp_" in c]


def test_what_milvus_partitions_and_sparse_vectors_become_elsewhere_is_reported() -> None:
    from dataclasses import replace

    from drkit.connectors.vectorstore.memory import MemoryVectorStore
    from drkit.connectors.vectorstore.transfer import not_carried

    cfg = replace(
        config("docs"),
        engine="milvus",
        options={"partitions": ["p2025"], "sparse_vectors": {"bm25": {}}},
    )
    notes = not_carried(cfg, MemoryVectorStore())
    assert any("p2025" in n and "__drkit_partition" in n for n in notes)
    assert any("sparse vectors (bm25)" in n for n in notes)
