"""How a Chroma or Milvus import writes: calls of the engine's batch size however the
caller cut the records, no lookup or delete in a collection that was empty (a restore),
and an id written twice in one import keeping its last row without stale payload keys
(both engines' upserts would keep the old ones, so a repeated id is deleted first)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from drkit.connectors.vectorstore.base import (
    CollectionConfig,
    Metric,
    VectorField,
    VectorStore,
    make_batch,
)

CFG = CollectionConfig(name="docs", vectors=(VectorField("", 4, Metric.COSINE),))


def _batch(ids: list[str], payloads: list[dict[str, Any]] | None = None) -> pa.RecordBatch:
    vecs = np.ones((len(ids), 4), dtype=np.float32)
    payloads = payloads if payloads is not None else [{"n": 1} for _ in ids]
    return make_batch(CFG, ids, {"": vecs}, payloads, ids)


def _ids(start: int, n: int) -> list[str]:
    return [f"doc-{i}" for i in range(start, start + n)]


def _counting(
    owner: Any, calls: Counter[str], names: dict[str, str], mp: pytest.MonkeyPatch
) -> None:
    """Count the calls of ``owner``'s methods (the real ones run) under ``names``' kinds."""
    for method, kind in names.items():
        real = getattr(owner, method)

        def counted(*a: Any, _real: Any = real, _kind: str = kind, **k: Any) -> Any:
            calls[_kind] += 1
            return _real(*a, **k)

        mp.setattr(owner, method, counted)


@pytest.fixture(params=["chroma", "milvus"])
def store(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[VectorStore, Counter[str]]]:
    calls: Counter[str] = Counter()
    s: VectorStore
    if request.param == "chroma":
        from chromadb.api.models.Collection import Collection

        from drkit.connectors.vectorstore.chroma import ChromaStore

        s = ChromaStore(f"chroma://{tmp_path / 'chroma'}")
        # class methods: the store takes a new Collection object per call
        names = {"get": "lookup", "delete": "delete", "add": "write"}
        _counting(Collection, calls, names, monkeypatch)
    else:
        from drkit.connectors.vectorstore.milvus import MilvusStore

        s = MilvusStore(f"milvus-lite://{tmp_path / 'milvus.db'}")
        _counting(s._client, calls, {"delete": "delete", "insert": "write"}, monkeypatch)
    s.create(CFG)
    yield s, calls
    s.close()


def _records(s: VectorStore) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for b in s.export("docs"):
        for rid, payload in zip(
            b.column("id").to_pylist(), b.column("payload").to_pylist(), strict=True
        ):
            assert rid not in out, f"{rid} exported twice"
            out[rid] = json.loads(payload)
    return out


def test_a_restore_sized_import_into_an_empty_collection_writes_whole_batches(
    store: tuple[VectorStore, Counter[str]],
) -> None:
    s, calls = store
    pieces = [_batch(_ids(i * 300, 300)) for i in range(7)]  # 2,100 records, as a restore cuts
    assert s.import_batches("docs", pieces) == 2100
    assert calls["write"] == -(-2100 // s.capabilities.max_batch)
    assert calls["lookup"] == 0, "nothing to look up in a collection that was empty"
    assert calls["delete"] == 0
    assert s.count("docs") == 2100


def test_an_id_repeated_in_one_import_keeps_its_last_row(
    store: tuple[VectorStore, Counter[str]],
) -> None:
    s, calls = store
    n = s.capabilities.max_batch
    first = _batch(_ids(0, n), [{"old": i} for i in range(n)])  # one whole write
    again = _batch(["doc-1", "doc-x", "doc-x"], [{"new": 1}, {"new": 2}, {"new": 3}])
    s.import_batches("docs", [first, again])
    assert calls["delete"] == 1, "the second write repeats doc-1: delete it first"
    got = _records(s)
    assert len(got) == n + 1
    assert got["doc-0"] == {"old": 0}
    assert got["doc-1"] == {"new": 1}  # no stale "old" key from the first row
    assert got["doc-x"] == {"new": 3}  # the last of the two rows in one write


def test_ids_repeated_within_one_write_need_no_delete(
    store: tuple[VectorStore, Counter[str]],
) -> None:
    s, calls = store
    pieces = [_batch(["a", "b"], [{"v": 1}, {"v": 2}]), _batch(["a"], [{"w": 3}])]
    s.import_batches("docs", pieces)  # gathered into one write: the last row of "a" goes
    assert calls["delete"] == 0
    assert _records(s) == {"a": {"w": 3}, "b": {"v": 2}}


def test_an_import_into_a_collection_with_records_replaces_them(
    store: tuple[VectorStore, Counter[str]],
) -> None:
    s, calls = store
    s.import_batches("docs", [_batch(["doc-0"], [{"old": 1}])])
    calls.clear()
    s.import_batches("docs", [_batch(["doc-0"], [{"new": 1}])])
    assert calls["delete"] == 1
    assert _records(s) == {"doc-0": {"new": 1}}
