"""How a Chroma import writes: ``add`` calls of the engine's batch size however the
caller cut the records, no lookup of existing ids in a collection that was empty (a
restore), and an id written twice in one import keeping its last row without stale
metadata keys."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from chromadb.api.models.Collection import Collection

from drkit.connectors.vectorstore.base import CollectionConfig, Metric, VectorField, make_batch
from drkit.connectors.vectorstore.chroma import ChromaStore

CFG = CollectionConfig(name="docs", vectors=(VectorField("", 4, Metric.COSINE),))


def _batch(ids: list[str], payloads: list[dict[str, Any]] | None = None) -> pa.RecordBatch:
    vecs = np.ones((len(ids), 4), dtype=np.float32)
    payloads = payloads if payloads is not None else [{"n": 1} for _ in ids]
    return make_batch(CFG, ids, {"": vecs}, payloads, ids)


def _ids(start: int, n: int) -> list[str]:
    return [f"doc-{i}" for i in range(start, start + n)]


@pytest.fixture
def store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[ChromaStore, Counter[str]]]:
    s = ChromaStore(f"chroma://{tmp_path / 'chroma'}")
    s.create(CFG)
    calls: Counter[str] = Counter()
    for method in ("get", "add", "delete"):
        real = getattr(Collection, method)

        def counted(
            self: Collection, *a: Any, _real: Any = real, _m: str = method, **k: Any
        ) -> Any:
            calls[_m] += 1
            return _real(self, *a, **k)

        monkeypatch.setattr(Collection, method, counted)
    yield s, calls
    s.close()


def _records(s: ChromaStore) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for b in s.export("docs"):
        for rid, payload in zip(
            b.column("id").to_pylist(), b.column("payload").to_pylist(), strict=True
        ):
            assert rid not in out, f"{rid} exported twice"
            out[rid] = json.loads(payload)
    return out


def test_a_restore_sized_import_into_an_empty_collection_adds_whole_batches(
    store: tuple[ChromaStore, Counter[str]],
) -> None:
    s, calls = store
    pieces = [_batch(_ids(i * 300, 300)) for i in range(7)]  # 2,100 records, as a restore cuts
    assert s.import_batches("docs", pieces) == 2100
    assert calls["add"] == 1, "one add of the engine's batch size"
    assert calls["get"] == 0, "nothing to look up in a collection that was empty"
    assert calls["delete"] == 0
    assert s.count("docs") == 2100


def test_an_id_repeated_in_one_import_keeps_its_last_row(
    store: tuple[ChromaStore, Counter[str]],
) -> None:
    s, calls = store
    n = s.capabilities.max_batch
    first = _batch(_ids(0, n), [{"old": i} for i in range(n)])  # one whole add
    again = _batch(["doc-1", "doc-x", "doc-x"], [{"new": 1}, {"new": 2}, {"new": 3}])
    s.import_batches("docs", [first, again])
    assert calls["delete"] == 1, "the second add repeats doc-1: delete it first"
    got = _records(s)
    assert len(got) == n + 1
    assert got["doc-0"] == {"old": 0}
    assert got["doc-1"] == {"new": 1}  # no stale "old" key from the first row
    assert got["doc-x"] == {"new": 3}  # the last of the two rows in one add


def test_an_import_into_a_collection_with_records_replaces_them(
    store: tuple[ChromaStore, Counter[str]],
) -> None:
    s, _ = store
    s.import_batches("docs", [_batch(["doc-0"], [{"old": 1}])])
    s.import_batches("docs", [_batch(["doc-0"], [{"new": 1}])])
    assert _records(s) == {"doc-0": {"new": 1}}
