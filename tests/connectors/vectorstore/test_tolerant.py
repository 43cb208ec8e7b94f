"""A copy from an engine that rounds cosine vectors, compared with its snapshot: rounding
is tolerated, damage of any kind is not, whatever the batches and the export's order."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace

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
from drkit.connectors.vectorstore.memory import MemoryVectorStore
from drkit.replication.vectors import (
    diff_collection,
    open_snapshot,
    restore_collection,
    snapshot_collection,
)
from drkit.repository import Repository

DIM = 8


class Rounding(MemoryVectorStore):
    """Stores every cosine vector one ulp away (as Chroma gives back three in four) and
    exports its records in reverse order."""

    capabilities = replace(MemoryVectorStore.capabilities, cosine_roundoff=True)

    def import_batches(self, name: str, batches: Iterable[pa.RecordBatch]) -> int:
        return super().import_batches(name, (_nudged(b) for b in batches))

    def export(self, name: str, *, batch_size: int = 1000) -> Iterator[pa.RecordBatch]:
        table = pa.Table.from_batches(list(super().export(name, batch_size=batch_size)))
        yield from table.take(pa.array(np.arange(len(table))[::-1])).to_batches(batch_size)


def _nudged(batch: pa.RecordBatch, by: float = 0.0) -> pa.RecordBatch:
    col = batch.column("vector")
    v = np.array(col.flatten().to_numpy(zero_copy_only=False)).reshape(len(batch), -1)
    v = np.nextafter(v, np.float32(np.inf)) + np.float32(by)
    arr = pa.FixedSizeListArray.from_arrays(pa.array(v.ravel(), pa.float32()), v.shape[1])
    i = batch.schema.get_field_index("vector")
    return batch.set_column(i, batch.schema.field(i), arr)


def _config(name: str) -> CollectionConfig:
    return CollectionConfig(name=name, vectors=(VectorField("", DIM, Metric.COSINE),))


def _fill(store: VectorStore, name: str, n: int) -> None:
    cfg = _config(name)
    store.create(cfg)
    vecs = np.random.default_rng(3).standard_normal((n, DIM)).astype(np.float32)
    docs = [None if i % 3 == 0 else f"text {i}" for i in range(n)]  # nulls on both sides
    payloads = [{"i": i} for i in range(n)]
    store.import_batches(
        name, [make_batch(cfg, [f"r{i}" for i in range(n)], {"": vecs}, payloads, docs)]
    )


def _rewrite(store: VectorStore, name: str, ids: list[str], **change: object) -> None:
    """Write ``ids`` again as they are but for ``change`` (vector offset, payload,
    document)."""
    rows = {r["id"]: r for b in store.export(name) for r in b.to_pylist()}
    picked = [rows[i] for i in ids]
    vecs = np.array([r["vector"] for r in picked], dtype=np.float32)
    vecs += np.float32(change.get("by", 0.0))
    payloads = [
        change["payload"] if "payload" in change else {"i": int(r["id"][1:])} for r in picked
    ]
    docs = [change["document"] if "document" in change else r["document"] for r in picked]
    store.import_batches(name, [make_batch(_config(name), ids, {"": vecs}, payloads, docs)])


@pytest.mark.parametrize("batch_size", [7, 5000])
def test_rounding_is_tolerated_and_damage_is_not(
    repo: Repository, name: str, batch_size: int
) -> None:
    live = MemoryVectorStore()
    _fill(live, name, 600)
    snap = snapshot_collection(repo, live, name, component="kb").snapshot
    opened = open_snapshot(repo, snap)
    copy = Rounding()
    restore_collection(repo, opened, copy, name)

    clean = diff_collection(repo, opened, copy, name, batch_size=batch_size)
    assert (clean.records, clean.total, clean.tolerated) == (600, 0, 600)

    _rewrite(copy, name, ["r5", "r50"], by=1e-3)  # moved beyond an ulp
    _rewrite(copy, name, ["r7"], payload={"i": -1})
    _rewrite(copy, name, ["r8"], document=None)  # a document lost (r8 had one)
    _rewrite(copy, name, ["r9"], document="x")  # a document where there was none
    copy.delete_ids(name, ["r11"])
    d = diff_collection(repo, opened, copy, name, batch_size=batch_size)
    assert d.altered == ["r5", "r50", "r7", "r8", "r9"]
    assert d.missing == ["r11"]
    assert (d.records, d.tolerated) == (599, 594)


def test_a_rounded_chroma_restore_checks_out_and_its_damage_shows(
    repo: Repository, open_store: Callable[[str], VectorStore], name: str
) -> None:
    """Chroma gives a cosine collection's vectors back within an ulp: a faithful
    restore is all tolerated; a vector moved, a payload changed are altered."""
    store = open_store("chroma")
    _fill(store, name, 300)
    snap = snapshot_collection(repo, store, name, component="kb").snapshot
    opened = open_snapshot(repo, snap)
    copy = name + "-copy"
    restore_collection(repo, opened, store, copy)
    clean = diff_collection(repo, opened, store, copy, batch_size=64)
    assert (clean.records, clean.total) == (300, 0)
    _rewrite(store, copy, ["r1"], by=1e-3)
    _rewrite(store, copy, ["r2"], payload={"i": 99})
    d = diff_collection(repo, opened, store, copy, batch_size=64)
    assert (d.altered, d.missing, d.extra) == (["r1", "r2"], [], [])
    assert clean.tolerated > 0  # Chroma 1.5 rounds: the tolerant path was taken
    assert d.tolerated <= clean.tolerated


class Failing(Rounding):
    """Rounds as :class:`Rounding` does, then loses its connection after two batches."""

    def export(self, name: str, *, batch_size: int = 1000) -> Iterator[pa.RecordBatch]:
        for i, batch in enumerate(super().export(name, batch_size=batch_size)):
            if i == 2:
                raise ConnectionError("engine went away")
            yield batch


def test_an_export_failing_midway_leaves_no_spill_file(
    repo: Repository,
    name: str,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spill = tmp_path_factory.mktemp("spill")
    monkeypatch.setattr("tempfile.tempdir", str(spill))
    live = MemoryVectorStore()
    _fill(live, name, 60)
    opened = open_snapshot(repo, snapshot_collection(repo, live, name, component="kb").snapshot)
    copy = Failing()
    restore_collection(repo, opened, copy, name)
    with pytest.raises(ConnectionError):
        diff_collection(repo, opened, copy, name, batch_size=10)
    assert list(spill.iterdir()) == []
