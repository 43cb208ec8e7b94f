"""Collections drkit did not create: the application's own table/collection layouts."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyarrow as pa

from drkit.connectors.vectorstore.base import Metric, VectorStore
from drkit.connectors.vectorstore.transfer import copy_collection

from .data import as_dict
from .engines import Postgres


def test_pgvector_application_table(
    postgres: Postgres, open_store: Callable[[str], VectorStore], name: str
) -> None:
    import psycopg

    with psycopg.connect(postgres.url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        conn.execute(
            f"CREATE TABLE {name} (pk bigint PRIMARY KEY, emb vector(3), title text, "
            "score float8, tags jsonb)"
        )
        conn.execute(f"CREATE INDEX ON {name} USING hnsw (emb vector_ip_ops)")
        conn.execute(
            f"INSERT INTO {name} VALUES (7, '[1,2,3]', 'seven', 0.5, '[\"a\"]'), "
            "(8, '[0.25,0,-1]', NULL, NULL, NULL)"
        )
    pg = open_store("pgvector")
    cfg = pg.describe(name)
    assert [(v.name, v.dimension, v.metric) for v in cfg.vectors] == [("emb", 3, Metric.DOT)]
    assert cfg.payload_schema == {"title": "text", "score": "double precision", "tags": "jsonb"}
    got = as_dict(pg.export(name))
    assert got["7"]["payload"] == {"title": "seven", "score": 0.5, "tags": ["a"]}
    assert got["8"]["payload"] == {"title": None, "score": None, "tags": None}
    assert got["7"]["vector.emb"] == [1.0, 2.0, 3.0]
    # import writes payload keys back into the application's own columns (issue 10
    # item 1; it used to refuse any table not in drkit's layout)
    before = as_dict(pg.export(name))
    assert pg.import_batches(name, pg.export(name)) == 2
    assert as_dict(pg.export(name)) == before
    pg.delete_ids(name, ["8"])
    assert pg.count(name) == 1
    lance = open_store("lancedb")
    copy_collection(pg, name, lance)
    assert as_dict(lance.export(name))["7"]["payload"]["title"] == "seven"


def test_lancedb_application_table(open_store: Callable[[str], VectorStore], name: str) -> None:
    lance = open_store("lancedb")
    db = lance._db  # type: ignore[attr-defined]
    data = pa.table(
        {
            "id": pa.array([1, 2], pa.int64()),
            "vector": pa.FixedSizeListArray.from_arrays(
                pa.array(np.arange(8, dtype=np.float32)), 4
            ),
            "text": ["a", "b"],
            "page": [3, 4],
        }
    )
    db.create_table(name, data=data)
    cfg = lance.describe(name)
    assert cfg.dimension == 4
    assert cfg.metric is Metric.L2
    assert cfg.payload_schema == {"text": "string", "page": "int64"}
    got = as_dict(lance.export(name))
    assert got["2"]["payload"] == {"text": "b", "page": 4}
    assert got["2"]["vector"] == [4.0, 5.0, 6.0, 7.0]


def test_milvus_application_collection(open_store: Callable[[str], VectorStore], name: str) -> None:
    from pymilvus import DataType, MilvusClient

    mv = open_store("milvus")
    client = mv._client  # type: ignore[attr-defined]
    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("pk", DataType.INT64, is_primary=True)
    schema.add_field("embedding", DataType.FLOAT_VECTOR, dim=2)
    schema.add_field("title", DataType.VARCHAR, max_length=100)
    index = client.prepare_index_params()
    index.add_index("embedding", index_type="AUTOINDEX", metric_type="IP")
    client.create_collection(name, schema=schema, index_params=index)
    client.insert(name, [{"pk": 5, "embedding": [0.5, 1.0], "title": "five"}])
    cfg = mv.describe(name)
    assert [(v.name, v.dimension, v.metric) for v in cfg.vectors] == [("embedding", 2, Metric.DOT)]
    assert cfg.options["id_type"] == "int64"
    got = as_dict(mv.export(name))
    assert got == {
        "5": {"vector.embedding": [0.5, 1.0], "payload": {"title": "five"}, "document": None}
    }
    mv.delete_ids(name, ["5"])
    assert mv.count(name) == 0
