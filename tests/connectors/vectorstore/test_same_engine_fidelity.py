"""Same-engine restores give back what the application queries (issue 10 items 1, 2, 7).

Each test builds a collection the way an application would, with the engine's own
client (schema, index settings, collection metadata, typed fields), snapshots it into a
real repository, restores it into the same engine under another name, and then runs the
application's own queries against the restored collection.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from drkit.connectors.vectorstore.base import Metric
from drkit.connectors.vectorstore.registry import open_vector_store
from drkit.replication.vectors import restore_collection, snapshot_collection
from drkit.repository import Repository

from .data import as_dict, assert_same_records, config, records
from .engines import Postgres


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
    source = db.create_table("docs", data=data)
    from lancedb.index import BTree, LabelList

    source.create_index("lang", config=BTree())
    source.create_index("tags", config=LabelList())
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
    indexes = {(i.columns[0], str(i.index_type), i.name) for i in table.list_indices()}
    assert indexes == {("lang", "BTree", "lang_idx"), ("tags", "LabelList", "tags_idx")}


# --- pgvector --------------------------------------------------------------------------


def test_pgvector_schema_indexes_and_typed_ids(postgres: Postgres, repo: Repository) -> None:
    import uuid

    import psycopg

    table = f"app{uuid.uuid4().hex[:8]}"
    ids = [uuid.UUID(int=i + 1) for i in range(30)]
    with psycopg.connect(postgres.url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        conn.execute(
            f"CREATE TABLE {table} (id uuid PRIMARY KEY, embedding vector(4) NOT NULL, "
            "lang text NOT NULL DEFAULT 'en', created timestamptz, meta jsonb, "
            "tags text[], n bigint)"
        )
        conn.execute(f"COMMENT ON COLUMN {table}.lang IS 'ISO 639-1'")
        conn.execute(
            f"CREATE INDEX {table}_hnsw ON {table} USING hnsw (embedding vector_cosine_ops) "
            "WITH (m = 24, ef_construction = 100)"
        )
        conn.execute(f"CREATE INDEX {table}_lang ON {table} (lang)")
        conn.execute(f"CREATE INDEX {table}_meta ON {table} USING gin (meta)")
        rng = np.random.default_rng(3)
        with conn.cursor().copy(
            f"COPY {table} (id, embedding, lang, created, meta, tags, n) FROM STDIN"
        ) as copy:
            for i, rid in enumerate(ids):
                vec = "[" + ",".join(str(float(x)) for x in rng.standard_normal(4)) + "]"
                meta = psycopg.types.json.Jsonb({"k": i, "deep": {"x": [1, None]}})
                copy.write_row(
                    (
                        rid,
                        vec,
                        "fr" if i % 3 else "en",
                        f"2025-01-{i % 28 + 1:02d}T10:00:00Z",
                        meta if i % 4 else None,
                        ["a", "ü"],
                        2**62 + i,
                    )
                )
    restored = table + "r"
    round_trip(repo, postgres.url, table, restored)

    def shape(conn: psycopg.Connection[Any], t: str) -> list[Any]:
        return conn.execute(
            "SELECT column_name, data_type, is_nullable, column_default FROM "
            "information_schema.columns WHERE table_name = %s ORDER BY ordinal_position",
            [t],
        ).fetchall()

    with psycopg.connect(postgres.url, autocommit=True) as conn:
        assert shape(conn, restored) == shape(conn, table)
        indexes = dict(
            conn.execute(
                "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s", [restored]
            ).fetchall()
        )
        # names were taken (the source still exists): derived from the new table's name
        hnsw = next(d for d in indexes.values() if "hnsw" in d)
        assert "m='24'" in hnsw
        assert "ef_construction='100'" in hnsw
        assert any("gin (meta)" in d for d in indexes.values())
        assert any("btree (lang)" in d for d in indexes.values())
        assert f"{restored}_pkey" in indexes
        assert not [n for n in indexes if "drkit_tmp" in n]
        comment = conn.execute(
            "SELECT col_description(%s::regclass, 2), obj_description(%s::regclass, 'pg_class')",
            [restored, restored],
        ).fetchone()
        assert comment is not None
        assert comment[1] is None
        # the application's own queries: typed id lookup, typed filters
        row = conn.execute(
            f"SELECT lang, created, n, tags FROM {restored} WHERE id = %s::uuid", [str(ids[4])]
        ).fetchone()
        assert row is not None
        assert row[0] == "fr"
        assert row[1].isoformat() == "2025-01-05T10:00:00+00:00"
        assert (row[2], row[3]) == (2**62 + 4, ["a", "ü"])
        got = conn.execute(
            f"SELECT count(*) FROM {restored} WHERE created < '2025-01-10'::timestamptz "
            'AND meta @> \'{"deep": {"x": [1]}}\''
        ).fetchone()
        want = conn.execute(
            f"SELECT count(*) FROM {table} WHERE created < '2025-01-10'::timestamptz "
            'AND meta @> \'{"deep": {"x": [1]}}\''
        ).fetchone()
        assert got == want
        assert got is not None
        assert got[0] > 0


def test_pgvector_restore_keeps_index_names_when_free(postgres: Postgres, repo: Repository) -> None:
    """Disaster recovery proper: the source table is gone, the restore takes its names."""
    import uuid

    import psycopg

    table = f"app{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres.url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        conn.execute(f"CREATE TABLE {table} (pk bigint PRIMARY KEY, emb vector(2), title text)")
        conn.execute(f"CREATE INDEX my_vectors ON {table} USING hnsw (emb vector_l2_ops)")
        conn.execute(f"INSERT INTO {table} VALUES (1, '[1,2]', 'one'), (2, '[0,1]', NULL)")
    with open_vector_store(postgres.url) as store:
        snap = snapshot_collection(repo, store, table, component="app").snapshot
        store.drop(table)
        restore_collection(repo, snap, store, table)
        assert as_dict(store.export(table))["1"]["payload"] == {"title": "one"}
    with psycopg.connect(postgres.url, autocommit=True) as conn:
        names = {
            r[0]
            for r in conn.execute("SELECT indexname FROM pg_indexes WHERE tablename = %s", [table])
        }
        assert names == {"my_vectors", f"{table}_pkey"}
        assert conn.execute(f"SELECT title FROM {table} WHERE pk = 1").fetchone() == ("one",)


# --- Qdrant ----------------------------------------------------------------------------


def test_qdrant_local_restore_writes_each_point_once(
    tmp_path: Path, repo: Repository, monkeypatch: pytest.MonkeyPatch
) -> None:
    from drkit.connectors.vectorstore.qdrant import QdrantStore

    url = f"qdrant+local://{tmp_path / 'q'}"
    cfg = config("docs", metric=Metric.L2)
    batch = records(cfg, 50, seed=4)
    with open_vector_store(url) as store:
        store.create(cfg)
        store.import_batches("docs", [batch])
        snap = snapshot_collection(repo, store, "docs", component="app").snapshot
    written: list[int] = []
    real = QdrantStore._upsert

    def counting(self: QdrantStore, name: str, points: list[Any]) -> None:
        written.append(len(points))
        real(self, name, points)

    monkeypatch.setattr(QdrantStore, "_upsert", counting)
    with open_vector_store(url) as store:
        restore_collection(repo, snap, store, "docs2")
        assert sum(written) == 50
        assert sorted(store.list_collections()) == ["docs", "docs2"]
    # meta.json was rewritten: a new client sees the renamed collection with its points
    with open_vector_store(url) as store:
        assert as_dict(store.export("docs2")) == as_dict([batch])
        # a directory no collection names (a rename cut short) does not leak into a create
        orphan = tmp_path / "q" / "collection" / "docs3"
        shutil.copytree(tmp_path / "q" / "collection" / "docs2", orphan)
        store.create(cfg, "docs3")
        assert store.count("docs3") == 0


# --- Milvus ----------------------------------------------------------------------------


def test_milvus_int64_key_declared_fields_index_partitions(
    tmp_path: Path, repo: Repository
) -> None:
    from pymilvus import DataType, MilvusClient

    path = tmp_path / "m.db"
    client = MilvusClient(uri=str(path))
    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("pk", DataType.INT64, is_primary=True)
    schema.add_field("emb", DataType.FLOAT_VECTOR, dim=4)
    schema.add_field("lang", DataType.VARCHAR, max_length=16)
    schema.add_field("n", DataType.INT64, nullable=True)
    schema.add_field("meta", DataType.JSON, nullable=True)
    index = client.prepare_index_params()
    index.add_index("emb", index_type="HNSW", metric_type="COSINE", params={"M": 12})
    client.create_collection("docs", schema=schema, index_params=index)
    client.create_partition("docs", "p2025")
    rng = np.random.default_rng(5)
    client.insert(
        "docs",
        [
            {
                "pk": 2**40 + i,
                "emb": rng.standard_normal(4).tolist(),
                "lang": "en" if i % 2 else "fr",
                "n": i if i % 3 else None,
                "meta": {"deep": [1, {"x": True}], "s": "ü"},
            }
            for i in range(20)
        ],
    )
    client.insert(  # five records of the application's own partition
        "docs",
        [
            {"pk": 7 + i, "emb": [1.0, 0, 0, float(i)], "lang": "de", "n": i, "meta": None}
            for i in range(5)
        ],
        partition_name="p2025",
    )
    client.close()
    round_trip(repo, f"milvus-lite://{path}", "docs", "docs2")

    client = MilvusClient(uri=str(path))
    desc = client.describe_collection("docs2")
    fields = {f["name"]: f for f in desc["fields"]}
    assert fields["pk"]["type"] == DataType.INT64
    assert fields["pk"].get("is_primary")
    assert set(fields) == {"pk", "emb", "lang", "n", "meta"}  # declared, not dynamic
    assert not desc["enable_dynamic_field"]
    idx = client.describe_index("docs2", index_name=client.list_indexes("docs2")[0])
    assert (idx["index_type"], idx["metric_type"]) == ("HNSW", "COSINE")
    assert "p2025" in client.list_partitions("docs2")
    # the application's own queries: a typed id lookup and a filter on a declared field
    client.load_collection("docs2")
    got = client.query("docs2", filter=f"pk == {2**40 + 3}", output_fields=["lang", "n"])
    assert [(r["lang"], r["n"]) for r in got] == [("en", None)]
    assert len(client.query("docs2", filter='lang == "fr"', output_fields=["pk"])) == 10
    # every record is back in its partition, without drkit's key
    in_p = client.query(
        "docs2", filter="", output_fields=["*"], partition_names=["p2025"], limit=100
    )
    assert sorted(r["pk"] for r in in_p) == [7, 8, 9, 10, 11]
    assert all("__drkit_partition" not in r for r in in_p)
    rest = client.query(
        "docs2", filter="", output_fields=["pk"], partition_names=["_default"], limit=100
    )
    assert len(rest) == 20
    client.close()


def test_milvus_keeps_a_payload_key_named_like_a_schema_field(
    tmp_path: Path, repo: Repository
) -> None:
    """A Qdrant collection whose text lives in payload key ``document`` goes into Milvus."""
    from drkit.connectors.vectorstore.transfer import copy_collection

    cfg = config("docs", metric=Metric.L2)
    batch = records(cfg, 12, flat=True)
    import pyarrow as pa

    payloads = [f'{{"document":"text {i}","id":{i}}}' for i in range(12)]
    batch = batch.set_column(batch.schema.get_field_index("payload"), "payload", pa.array(payloads))
    with (
        open_vector_store(f"qdrant+local://{tmp_path / 'q'}") as src,
        open_vector_store(f"milvus-lite://{tmp_path / 'm.db'}") as dst,
    ):
        src.create(cfg)
        src.import_batches("docs", [batch])
        copy_collection(src, "docs", dst)
        assert_same_records(as_dict(dst.export("docs")), as_dict([batch]), cfg, [src.capabilities])


def test_qdrant_document_key_from_the_plan(tmp_path: Path) -> None:
    from qdrant_client import QdrantClient, models

    from drkit.connectors.vectorstore.transfer import copy_collection
    from drkit.plan.models import VectorStore as VectorStoreModel

    path = tmp_path / "q"
    client = QdrantClient(path=str(path))
    client.create_collection(
        "kb", vectors_config=models.VectorParams(size=2, distance=models.Distance.DOT)
    )
    client.upsert(
        "kb",
        points=[
            models.PointStruct(
                id=i, vector=[1.0, float(i)], payload={"text": f"t{i}", "lang": "en"}
            )
            for i in range(5)
        ],
    )
    client.close()
    comp = VectorStoreModel(
        name="kb", tier="t", engine=f"qdrant+local://{path}", document_key="text"
    )
    assert comp.engine.endswith("?document_key=text")
    with open_vector_store(comp.engine) as src:
        got = as_dict(src.export("kb"))
        assert got["3"]["document"] == "t3"
        assert got["3"]["payload"] == {"lang": "en"}
        with open_vector_store(f"chroma://{tmp_path / 'c'}") as chroma:
            copy_collection(src, "kb", chroma, "kbase")
            assert as_dict(chroma.export("kbase"))["3"]["document"] == "t3"
            copy_collection(chroma, "kbase", src, "kb2")
    client = QdrantClient(path=str(path))
    point = client.retrieve("kb2", [3])[0]
    assert point.payload == {"text": "t3", "lang": "en"}  # the application's key, not drkit's
    client.close()


def test_qdrant_sparse_vectors_and_multivectors_are_captured(
    tmp_path: Path, repo: Repository
) -> None:
    from qdrant_client import QdrantClient, models

    path = tmp_path / "q"
    client = QdrantClient(path=str(path))
    client.create_collection(
        "hybrid",
        vectors_config={
            "dense": models.VectorParams(size=2, distance=models.Distance.DOT),
            "colbert": models.VectorParams(
                size=2,
                distance=models.Distance.DOT,
                multivector_config=models.MultiVectorConfig(
                    comparator=models.MultiVectorComparator.MAX_SIM
                ),
            ),
        },
        sparse_vectors_config={"bm25": models.SparseVectorParams(modifier=models.Modifier.IDF)},
    )
    client.upsert(
        "hybrid",
        points=[
            models.PointStruct(
                id=i,
                vector={
                    "dense": [1.0, float(i)],
                    "colbert": [[1.0, 0.5 * i], [0.25, 2.0]],
                    "bm25": models.SparseVector(indices=[i, 100 + i], values=[0.5, 1.25 * i]),
                },
                payload={"lang": "en"},
            )
            for i in range(6)
        ],
    )
    client.close()
    round_trip(repo, f"qdrant+local://{path}", "hybrid", "hybrid2")

    client = QdrantClient(path=str(path))
    params = client.get_collection("hybrid2").config.params
    assert params.sparse_vectors is not None
    assert params.sparse_vectors["bm25"].modifier == models.Modifier.IDF
    assert params.vectors["colbert"].multivector_config is not None
    point = client.retrieve("hybrid2", [3], with_vectors=True)[0]
    assert point.payload == {"lang": "en"}
    assert point.vector["bm25"] == models.SparseVector(indices=[3, 103], values=[0.5, 3.75])
    assert point.vector["colbert"] == [[1.0, 1.5], [0.25, 2.0]]
    # the application's hybrid query: sparse search by name
    hits = client.query_points(
        "hybrid2",
        query=models.SparseVector(indices=[103], values=[1.0]),
        using="bm25",
        limit=1,
    ).points
    assert [h.id for h in hits] == [3]
    client.close()


def test_pgvector_check_constraints_and_foreign_keys(postgres: Postgres, repo: Repository) -> None:
    import uuid

    import psycopg

    table, authors = f"app{uuid.uuid4().hex[:8]}", f"au{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres.url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        conn.execute(f"CREATE TABLE {authors} (id int PRIMARY KEY)")
        conn.execute(f"INSERT INTO {authors} VALUES (1), (2)")
        conn.execute(
            f"CREATE TABLE {table} (id text PRIMARY KEY, embedding vector(3), "
            f"score real CONSTRAINT {table}_score CHECK (score BETWEEN 0 AND 1), "
            f"author int CONSTRAINT {table}_author REFERENCES {authors}(id))"
        )
        conn.execute(
            f"INSERT INTO {table} VALUES ('a', '[1,0,0]', 0.5, 1), ('b', '[0,1,0]', 0.9, 2)"
        )
    restored = table + "r"
    round_trip(repo, postgres.url, table, restored)

    with psycopg.connect(postgres.url, autocommit=True) as conn:
        cons = dict(
            conn.execute(
                "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE conrelid = %s::regclass AND contype IN ('c', 'f')",
                [restored],
            ).fetchall()
        )
        assert "BETWEEN" in cons[f"{table}_score"] or ">=" in cons[f"{table}_score"]
        assert f"REFERENCES {authors}(id)" in cons[f"{table}_author"]
        # the application's constraints still guard its writes
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute(f"INSERT INTO {restored} VALUES ('c', '[0,0,1]', 7, 1)")
        with pytest.raises(psycopg.errors.ForeignKeyViolation):
            conn.execute(f"INSERT INTO {restored} VALUES ('d', '[0,0,1]', 0.1, 99)")
        comment = conn.execute(
            "SELECT obj_description(%s::regclass, 'pg_class')", [restored]
        ).fetchone()
        assert comment == (None,)  # nothing left pending


def test_lancedb_vector_index_rebuilt_with_its_parameters(tmp_path: Path, repo: Repository) -> None:
    import lancedb
    import pyarrow as pa
    from lancedb.index import IvfHnswSq

    path = tmp_path / "lance"
    n = 600  # enough rows to train the IVF partitions
    vecs = np.random.default_rng(4).standard_normal((n, 16)).astype(np.float32)
    data = pa.table(
        {
            "id": [f"d{i}" for i in range(n)],
            "vector": pa.FixedSizeListArray.from_arrays(pa.array(vecs.ravel()), 16),
            "lang": ["en" if i % 2 else "fr" for i in range(n)],
        }
    )
    source = lancedb.connect(str(path)).create_table("docs", data=data)
    hnsw = IvfHnswSq(distance_type="cosine", num_partitions=2, m=8, ef_construction=50)
    source.create_index("vector", config=hnsw)
    round_trip(repo, f"lancedb://{path}", "docs", "docs2")

    table = lancedb.connect(str(path)).open_table("docs2")
    (idx,) = [i for i in table.list_indices() if i.columns == ["vector"]]
    assert (str(idx.index_type), idx.name) == ("IvfHnswSq", "vector_idx")
    details = idx.index_details or {}
    assert details["metric_type"] == "COSINE"
    assert (details["hnsw"]["max_connections"], details["hnsw"]["construction_ef"]) == (8, 50)
    assert table.index_stats(idx.name).num_indexed_rows == n  # type: ignore[union-attr]
    # the application's query goes through the index and finds its nearest neighbour
    hit = table.search(vecs[3].tolist()).metric("cosine").limit(1).to_list()[0]
    assert hit["id"] == "d3"


def test_milvus_sparse_vector_field_is_backed_up_and_restored(
    tmp_path: Path, repo: Repository
) -> None:
    """A Milvus hybrid collection (dense + SPARSE_FLOAT_VECTOR) was refused at backup."""
    from pymilvus import DataType, MilvusClient

    path = tmp_path / "m.db"
    client = MilvusClient(uri=str(path))
    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=True)
    schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=32)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=2)
    schema.add_field("bm25", DataType.SPARSE_FLOAT_VECTOR)
    index = client.prepare_index_params()
    index.add_index("vector", index_type="AUTOINDEX", metric_type="COSINE")
    index.add_index("bm25", index_type="SPARSE_INVERTED_INDEX", metric_type="IP")
    client.create_collection("docs", schema=schema, index_params=index)
    client.insert(
        "docs",
        [
            {"id": f"d{i}", "vector": [1.0, float(i)], "bm25": {i: 0.5, 50 + i: 1.0}}
            for i in range(8)
        ],
    )
    client.close()
    round_trip(repo, f"milvus-lite://{path}", "docs", "docs2")

    client = MilvusClient(uri=str(path))
    fields = {f["name"]: f["type"] for f in client.describe_collection("docs2")["fields"]}
    assert fields["bm25"] == DataType.SPARSE_FLOAT_VECTOR
    client.load_collection("docs2")
    hits = client.search("docs2", [{55: 1.0}], anns_field="bm25", limit=1, output_fields=["id"])
    assert [h["entity"]["id"] for h in hits[0]] == ["d5"]
    client.close()
