"""Same-engine restores give back what the application queries (issue 10 items 1, 2, 7).

Each test builds a collection the way an application would, with the engine's own
client (schema, index settings, collection metadata, typed fields), snapshots it into a
real repository, restores it into the same engine under another name, and then runs the
application's own queries against the restored collection.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from drkit.connectors.vectorstore.registry import open_vector_store
from drkit.replication.vectors import restore_collection, snapshot_collection
from drkit.repository import Repository

from .data import as_dict, assert_same_records


def round_trip(repo: Repository, url: str, name: str, restored: str) -> None:
    with open_vector_store(url) as store:
        res = snapshot_collection(repo, store, name, component="app")
        restore_collection(repo, res.snapshot, store, restored)
        assert_same_records(
            as_dict(store.export(restored)),
            as_dict(store.export(name)),
            store.describe(name),
            [store.capabilities],
        )


# --- Chroma ----------------------------------------------------------------------------


def chroma_client(path: Path) -> Any:
    import chromadb
    from chromadb.config import Settings

    return chromadb.PersistentClient(path=str(path), settings=Settings(anonymized_telemetry=False))


HNSW = {"space": "cosine", "ef_construction": 150, "max_neighbors": 24, "ef_search": 60}


def test_chroma_hnsw_settings_metadata_and_list_payloads(tmp_path: Path, repo: Repository) -> None:
    path = tmp_path / "chroma"
    client = chroma_client(path)
    col = client.create_collection(
        "kbase",
        metadata={"app": "support-bot", "owner": "team-a"},
        configuration={
            "hnsw": {
                "space": "cosine",
                "ef_construction": 150,
                "max_neighbors": 24,
                "ef_search": 60,
            }
        },
        embedding_function=None,
    )
    rng = np.random.default_rng(1)
    n = 30
    col.add(
        ids=[f"d{i}" for i in range(n)],
        embeddings=rng.standard_normal((n, 8)).tolist(),
        metadatas=[
            {"lang": "en" if i % 2 else "fr", "tags": ["a", f"t{i % 3}"], "ns": [i, i + 1]}
            for i in range(n)
        ],
        documents=[f"text {i}" for i in range(n)],
    )
    del client
    round_trip(repo, f"chroma://{path}", "kbase", "kbase2")

    client = chroma_client(path)
    got = client.get_collection("kbase2", embedding_function=None)
    hnsw = got.configuration_json["hnsw"]
    assert (hnsw["space"], hnsw["ef_construction"], hnsw["max_neighbors"], hnsw["ef_search"]) == (
        "cosine",
        150,
        24,
        60,
    )
    assert {
        k: v for k, v in (got.metadata or {}).items() if not k.startswith(("hnsw:", "drkit:"))
    } == {
        "app": "support-bot",
        "owner": "team-a",
    }
    # the application's filters: a scalar field and a list field
    en = got.get(where={"lang": "en"}, include=["metadatas"])
    assert len(en["ids"]) == 15
    t1 = got.get(where={"tags": {"$contains": "t1"}}, include=[])
    assert sorted(t1["ids"]) == sorted(f"d{i}" for i in range(n) if i % 3 == 1)


def test_flat_payload_rule_matches_chroma() -> None:
    """What Chroma 1.5 stores passes; what it refuses is refused before writing."""
    import pytest

    from drkit.connectors.vectorstore.records import check_flat_payload
    from drkit.errors import IncompatibleTarget

    check_flat_payload({"s": "", "i": 2**53, "b": True, "l": [1, 2], "t": ["a"], "x": [True]}, "c")
    for bad in ({"l": []}, {"l": [1, "a"]}, {"l": [1, 2.5]}, {"l": [[1]]}, {"n": None}, {"d": {}}):
        with pytest.raises(IncompatibleTarget, match="flat metadata"):
            check_flat_payload(bad, "chroma")


# --- LanceDB ---------------------------------------------------------------------------


def test_lancedb_columns_types_and_nulls(tmp_path: Path, repo: Repository) -> None:
    import datetime as dt

    import lancedb
    import pyarrow as pa

    path = tmp_path / "lance"
    db = lancedb.connect(str(path))
    n = 20
    rng = np.random.default_rng(2)
    when = dt.datetime(2025, 3, 1, 12, 30, tzinfo=dt.UTC)
    data = pa.table(
        {
            "id": pa.array(range(n), pa.int64()),
            "vector": pa.FixedSizeListArray.from_arrays(
                pa.array(rng.standard_normal(n * 4).astype(np.float32)), 4
            ),
            "lang": ["en" if i % 2 else "fr" for i in range(n)],
            "page": pa.array([i if i % 5 else None for i in range(n)], pa.int32()),
            "tags": [["a", f"t{i % 3}"] for i in range(n)],
            "created": pa.array(
                [when + dt.timedelta(days=i) for i in range(n)], pa.timestamp("us", tz="UTC")
            ),
            "big": pa.array([2**62 + i for i in range(n)], pa.int64()),
        }
    )
    db.create_table("docs", data=data)
    with open_vector_store(f"lancedb://{path}") as store:
        exported = as_dict(store.export("docs"))
        # a null cell is an absent key, not an explicit JSON null
        assert "page" not in exported["5"]["payload"]
        assert exported["6"]["payload"]["page"] == 6
    round_trip(repo, f"lancedb://{path}", "docs", "docs2")

    table = lancedb.connect(str(path)).open_table("docs2")
    assert table.schema.remove_metadata() == db.open_table("docs").schema.remove_metadata()
    # the application's own queries: a filter on a field, a lookup by typed id
    assert table.count_rows("lang = 'en'") == 10
    row = table.search().where("id = 7").to_list()[0]
    assert (row["lang"], row["page"], row["tags"], row["big"]) == ("en", 7, ["a", "t1"], 2**62 + 7)
    assert row["created"] == when + dt.timedelta(days=7)
    assert table.search().where("id = 5").to_list()[0]["page"] is None
