"""The vector-snapshot MUST rules of docs/repository-format.md (V1-V5), one test per rule
id, on the in-memory engine (the real engines run the same code in test_snapshots.py)."""

from __future__ import annotations

from collections.abc import Callable

import pyarrow as pa
import pytest

from drkit.connectors.vectorstore.base import VectorStore
from drkit.errors import CorruptObject, EngineUnreachable
from drkit.replication.vectors import (
    open_snapshot,
    read_records,
    restore_collection,
    snapshot_collection,
)
from drkit.repository import Repository

from .data import as_dict, config, records

Opener = Callable[[str], VectorStore]


def _snapshotted(open_store: Opener, name: str, n: int = 60) -> VectorStore:
    src = open_store("memory")
    cfg = config(name, dim=16)
    src.create(cfg)
    src.import_batches(name, [records(cfg, n, seed=1)])
    return src


def test_v1_readers_use_only_the_rows_the_index_lists(
    repo: Repository, open_store: Opener, name: str
) -> None:
    src = _snapshotted(open_store, name, n=200)
    snapshot_collection(repo, src, name, component="kb")
    cfg = config(name, dim=16)
    changed = records(cfg, 200, seed=9).slice(0, 20)  # 20 records replaced: superseded rows
    src.import_batches(name, [changed])
    result = snapshot_collection(repo, src, name, component="kb")
    assert result.carried_segments > 0  # the parent's segment, with its superseded rows
    opened = open_snapshot(repo, result.snapshot)
    carried_rows = sum(s.rows for s in opened.manifest.segments)
    assert carried_rows > len(opened.index) == 200
    dst = open_store("memory")
    restore_collection(repo, result.snapshot, dst, name)
    assert as_dict(dst.export(name)) == as_dict(src.export(name))


def test_v2_every_record_matches_its_index_hash(
    repo: Repository, open_store: Opener, name: str
) -> None:
    src = _snapshotted(open_store, name)
    opened = open_snapshot(repo, snapshot_collection(repo, src, name, component="kb").snapshot)
    assert sum(b.num_rows for b in read_records(repo, opened)) == 60
    hashes = opened.index.column("hash").to_pylist()
    hashes[7] = bytes(16)
    at = opened.index.column_names.index("hash")
    opened.index = opened.index.set_column(at, "hash", pa.array(hashes, pa.binary(16)))
    with pytest.raises(CorruptObject):
        list(read_records(repo, opened))


def test_v3_the_index_counts_the_records_and_stays_inside_its_segments(
    repo: Repository, open_store: Opener, name: str
) -> None:
    src = _snapshotted(open_store, name)
    opened = open_snapshot(repo, snapshot_collection(repo, src, name, component="kb").snapshot)
    assert len(opened.index) == opened.manifest.records == 60
    rows = opened.index.column("row").to_pylist()
    rows[0] = opened.manifest.segments[0].rows + 5  # past the end of its segment
    at = opened.index.column_names.index("row")
    opened.index = opened.index.set_column(at, "row", pa.array(rows, pa.int32()))
    with pytest.raises(CorruptObject, match="outside segment"):
        list(read_records(repo, opened))


def test_v4_mostly_superseded_parents_make_a_full_snapshot(
    repo: Repository, open_store: Opener, name: str
) -> None:
    src = _snapshotted(open_store, name, n=100)
    snapshot_collection(repo, src, name, component="kb")
    cfg = config(name, dim=16)
    src.import_batches(name, [records(cfg, 100, seed=5)])  # every record replaced
    result = snapshot_collection(repo, src, name, component="kb")
    assert result.carried_segments == 0  # written in full: nothing of the parent carried
    opened = open_snapshot(repo, result.snapshot)
    assert sum(s.rows for s in opened.manifest.segments) == len(opened.index) == 100


def test_v5_a_failed_export_leaves_no_snapshot(
    repo: Repository, open_store: Opener, name: str
) -> None:
    src = _snapshotted(open_store, name, n=300)

    def engine_dies(done: int) -> None:
        if done:
            raise EngineUnreachable("the engine went away mid-export")

    with pytest.raises(EngineUnreachable):
        snapshot_collection(
            repo, src, name, component="kb", batch_size=50, progress=engine_dies, retries=0
        )
    assert repo.snapshots() == []
