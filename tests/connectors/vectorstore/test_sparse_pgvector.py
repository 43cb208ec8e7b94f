"""Sparse vectors into pgvector: Qdrant's sparse vectors become ``sparsevec`` columns
(searchable there), come back to Qdrant equal, survive pgvector -> pgvector, and what
``sparsevec`` cannot hold is refused with nothing left behind."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from drkit.connectors.vectorstore.base import SPARSE_KEY, VectorStore
from drkit.connectors.vectorstore.pgvector_sparse import MAX_DIM, MAX_NNZ, from_text, to_text
from drkit.connectors.vectorstore.transfer import copy_collection, not_carried
from drkit.errors import IncompatibleTarget
from drkit.repository import Repository

from .data import as_dict
from .engines import Postgres

#: the largest 0-based index pgvector's sparsevec holds (its position 1,000,000,000)
TOP = MAX_DIM - 1


def _hybrid(q: VectorStore, name: str, sparse: dict[int, Any], modifier: bool = False) -> Any:
    """A Qdrant collection with a dense vector and a sparse vector ``bm25`` per point
    (``sparse``: point id -> SparseVector, or None for a point without one)."""
    from qdrant_client import models

    client: Any = q._client  # type: ignore[attr-defined]
    client.create_collection(
        name,
        vectors_config={"dense": models.VectorParams(size=2, distance=models.Distance.DOT)},
        sparse_vectors_config={
            "bm25": models.SparseVectorParams(modifier=models.Modifier.IDF if modifier else None)
        },
    )
    client.upsert(
        name,
        points=[
            models.PointStruct(
                id=i,
                vector={"dense": [1.0, float(i)]} | ({"bm25": sv} if sv is not None else {}),
                payload={"lang": "en", "n": i},
            )
            for i, sv in sparse.items()
        ],
    )
    return client


def _points() -> dict[int, Any]:
    from qdrant_client import models

    points: dict[int, Any] = {
        i: models.SparseVector(indices=[i, 100 + i], values=[0.5, 1.25 * i]) for i in range(1, 6)
    }
    points[0] = models.SparseVector(indices=[0, TOP], values=[-2.0, 0.25])  # both ends
    points[6] = None  # no sparse vector
    points[7] = models.SparseVector(indices=[], values=[])  # an empty one
    return points


def test_qdrant_sparse_vectors_round_trip_through_pgvector(
    open_store: Callable[[str], VectorStore], postgres: Postgres, name: str
) -> None:
    import psycopg
    from qdrant_client import models

    q = open_store("qdrant")
    _hybrid(q, name, _points(), modifier=True)
    pg = open_store("pgvector")
    notes = not_carried(q.describe(name), pg)
    assert not [n for n in notes if "stay in the payload" in n]  # carried, not left as payload
    assert any("idf modifier of sparse vector 'bm25'" in n for n in notes)
    assert copy_collection(q, name, pg, batch_size=3) == 8

    with psycopg.connect(postgres.url, autocommit=True) as conn:
        typ = conn.execute(
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
            "WHERE attrelid = %s::regclass AND attname = 'bm25'",
            [name],
        ).fetchone()
        assert typ == ("sparsevec(1000000000)",)
        # 0-based index i is sparsevec position i + 1
        rows = dict(conn.execute(f"SELECT id, bm25::text FROM {name}").fetchall())
        assert rows["3"] == "{4:0.5,104:3.75}/1000000000"
        assert rows["0"] == "{1:-2,1000000000:0.25}/1000000000"
        assert rows["6"] is None
        assert rows["7"] == "{}/1000000000"
        # the application's sparse search, on the column
        hits = conn.execute(
            f"SELECT id FROM {name} ORDER BY bm25 <#> '{{104:1}}/1000000000'::sparsevec LIMIT 2"
        ).fetchall()
        assert hits[0] == ("3",)

    described = pg.describe(name)
    assert described.options["sparse_vectors"] == {"bm25": {"dimension": MAX_DIM}}
    # pgvector's export is Qdrant's, record for record (sparse vectors in the payload)
    source = as_dict(q.export(name))
    got = as_dict(pg.export(name))
    assert got == source
    assert got["3"]["payload"][SPARSE_KEY + "bm25"] == {"indices": [3, 103], "values": [0.5, 3.75]}
    assert SPARSE_KEY + "bm25" not in got["6"]["payload"]

    back = open_store("qdrant")
    copy_collection(pg, name, back, batch_size=5)
    client: Any = back._client  # type: ignore[attr-defined]
    by_id = {p.id: p.vector for p in client.retrieve(name, list(range(8)), with_vectors=True)}
    assert by_id[3]["bm25"] == models.SparseVector(indices=[3, 103], values=[0.5, 3.75])
    assert by_id[0]["bm25"] == models.SparseVector(indices=[0, TOP], values=[-2.0, 0.25])
    assert "bm25" not in by_id[6]
    assert as_dict(back.export(name)) == source
    # and the sparse search still works in Qdrant
    hits = client.query_points(
        name, query=models.SparseVector(indices=[103], values=[1.0]), using="bm25", limit=1
    ).points
    assert [h.id for h in hits] == [3]


def test_pgvector_sparse_columns_survive_a_same_engine_restore(
    open_store: Callable[[str], VectorStore], postgres: Postgres, name: str
) -> None:
    """An application's own table: a typed sparsevec column with its HNSW index, and an
    untyped one whose rows each have their own dimension."""
    import psycopg

    with psycopg.connect(postgres.url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        conn.execute(
            f"CREATE TABLE {name} (id bigint PRIMARY KEY, emb vector(2), "
            "splade sparsevec(30522), loose sparsevec)"
        )
        conn.execute(f"CREATE INDEX {name}_splade ON {name} USING hnsw (splade sparsevec_ip_ops)")
        conn.execute(
            f"INSERT INTO {name} VALUES (1, '[1,0]', '{{1:0.5,30522:2}}/30522', '{{2:1}}/5'), "
            f"(2, '[0,1]', '{{7:1.5}}/30522', '{{9:3}}/10'), (3, '[1,1]', NULL, NULL)"
        )
    src = open_store("pgvector")
    described = src.describe(name)
    assert described.options["sparse_vectors"] == {"splade": {"dimension": 30522}, "loose": {}}
    exported = as_dict(src.export(name))
    assert exported["1"]["payload"] == {
        SPARSE_KEY + "splade": {"indices": [0, 30521], "values": [0.5, 2.0]},
        SPARSE_KEY + "loose": {"indices": [1], "values": [1.0], "dimension": 5},
    }
    dst = open_store("pgvector")
    copy_collection(src, name, dst, name + "r")
    with psycopg.connect(postgres.url, autocommit=True) as conn:
        rows = conn.execute(
            f"SELECT id, splade::text, loose::text FROM {name}r ORDER BY id"
        ).fetchall()
        assert rows == [
            (1, "{1:0.5,30522:2}/30522", "{2:1}/5"),
            (2, "{7:1.5}/30522", "{9:3}/10"),
            (3, None, None),
        ]
        indexes = conn.execute(
            "SELECT indexdef FROM pg_indexes WHERE tablename = %s", [name + "r"]
        ).fetchall()
        assert any("hnsw (splade sparsevec_ip_ops)" in i for (i,) in indexes)
        hit = conn.execute(
            f"SELECT id FROM {name}r ORDER BY splade <#> '{{7:1}}/30522'::sparsevec LIMIT 1"
        ).fetchone()
        assert hit == (2,)
    assert as_dict(dst.export(name + "r")) == exported


@pytest.mark.parametrize(
    ("indices", "values", "refusal"),
    [
        ([1, MAX_DIM], [0.5, 1.0], "index 1000000000, beyond pgvector's sparsevec"),
        ([2**32 - 1], [1.0], "index 4294967295, beyond"),
        (list(range(MAX_NNZ + 1)), [1.0] * (MAX_NNZ + 1), "16001 non-zero values"),
        ([1, 2], [0.5, 0.0], "explicit zero at index 2"),
    ],
    ids=["index-1e9", "index-u32-max", "too-many-non-zeros", "explicit-zero"],
)
def test_what_sparsevec_cannot_hold_is_refused_and_nothing_is_left(
    open_store: Callable[[str], VectorStore],
    name: str,
    indices: list[int],
    values: list[float],
    refusal: str,
) -> None:
    from qdrant_client import models

    q = open_store("qdrant")
    points = _points()
    points[9] = models.SparseVector(indices=indices, values=values)  # the last record
    _hybrid(q, name, points)
    pg = open_store("pgvector")
    with pytest.raises(IncompatibleTarget, match=refusal) as err:
        copy_collection(q, name, pg, batch_size=3)  # earlier batches fit
    assert "record '9'" in str(err.value)
    assert "Qdrant or Milvus" in (err.value.hint or "")
    # no table under the name, no temporary one (the database is shared with other tests)
    assert [c for c in pg.list_collections() if c.startswith(name)] == []


def test_sparse_vector_names_pgvector_cannot_make_columns_of_are_refused_up_front(
    open_store: Callable[[str], VectorStore], name: str
) -> None:
    from dataclasses import replace

    from .data import config

    pg = open_store("pgvector")
    for bad in ("document", "payload", "id", "embedding", "x" * 64):
        cfg = replace(config(name), engine="qdrant", options={"sparse_vectors": {bad: {}}})
        with pytest.raises(IncompatibleTarget, match="cannot be a column"):
            pg.create(cfg)
    assert name not in pg.list_collections()


def test_sparsevec_text_limits() -> None:
    """The codec on its own: 0-based indices to 1-based positions and back, the edges."""
    text = to_text({"indices": [0, TOP], "values": [1.5, -0.25]}, MAX_DIM, "r", "s")
    assert text == "{1:1.5,1000000000:-0.25}/1000000000"
    assert from_text(text, with_dimension=False) == {"indices": [0, TOP], "values": [1.5, -0.25]}
    assert from_text("{}/7", with_dimension=True) == {"indices": [], "values": [], "dimension": 7}
    for bad, why in [
        ({"indices": [5], "values": [1.0]}, "beyond pgvector's sparsevec\\(5\\)"),
        ({"indices": [-1], "values": [1.0]}, "integers from 0"),
        ({"indices": [1, 1], "values": [1.0, 2.0]}, "same index twice"),
        ({"indices": [1], "values": [float("nan")]}, "finite numbers"),
        ({"indices": [1, 2], "values": [1.0]}, "2 indices but 1 values"),
        ([1, 2], "is not \\{indices, values\\}"),
    ]:
        with pytest.raises(IncompatibleTarget, match=why):
            to_text(bad, 5, "r", "s")


def test_qdrant_snapshot_restores_into_pgvector_and_back(
    repo: Repository, open_store: Callable[[str], VectorStore], name: str
) -> None:
    """Through the repository: a Qdrant hybrid snapshot restores into pgvector (the
    sparse vectors as columns, nothing reported left in the payload), a snapshot of
    that passes verify, and restores into Qdrant as the collection it was."""
    from drkit.replication.vectors import restore_collection, snapshot_collection, verify_collection

    q = open_store("qdrant")
    _hybrid(q, name, _points())
    source = as_dict(q.export(name))
    snap = snapshot_collection(repo, q, name, component="kb").snapshot
    pg = open_store("pgvector")
    report = restore_collection(repo, snap.id, pg, name + "p")
    assert report.records == 8
    assert not [n for n in report.not_carried if "sparse" in n]
    assert pg.describe(name + "p").options["sparse_vectors"] == {"bm25": {"dimension": MAX_DIM}}
    again = snapshot_collection(repo, pg, name + "p", component="kbp").snapshot
    verified = verify_collection(repo, again.id, pg, queries=5, k=3)
    assert verified.ok, verified.problems
    back = open_store("qdrant")
    restore_collection(repo, again.id, back, name)
    assert as_dict(back.export(name)) == source


def test_a_pgvector_snapshot_from_before_sparse_vectors_still_restores(
    open_store: Callable[[str], VectorStore], postgres: Postgres, name: str
) -> None:
    """Snapshots taken before sparsevec columns were sparse vectors hold the column's
    text in the payload under the column's name: it goes back into the column."""
    import psycopg

    from drkit.connectors.vectorstore.base import make_batch

    with psycopg.connect(postgres.url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        conn.execute(f"CREATE TABLE {name} (id bigint PRIMARY KEY, emb vector(2), s sparsevec(5))")
    pg = open_store("pgvector")
    cfg = pg.describe(name)
    old = make_batch(
        cfg, ["1", "2"], {"emb": [[1.0, 0.0], [0.0, 1.0]]}, [{"s": "{2:1}/5"}, {}], None
    )
    pg.create(cfg, name + "o")
    assert pg.import_batches(name + "o", [old]) == 2
    with psycopg.connect(postgres.url, autocommit=True) as conn:
        rows = conn.execute(f"SELECT id, s::text FROM {name}o ORDER BY id").fetchall()
    assert rows == [(1, "{2:1}/5"), (2, None)]
    got = as_dict(pg.export(name + "o"))
    assert got["1"]["payload"] == {SPARSE_KEY + "s": {"indices": [1], "values": [1.0]}}
    assert got["2"]["payload"] == {}
