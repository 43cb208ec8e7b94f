"""Warm standby sync between real engines: incremental, resumable, lag measured."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from tests.connectors.vectorstore.data import as_dict, config, records

from drkit.connectors.vectorstore.base import Metric, VectorStore
from drkit.replication.standby import Ledger, check_standby, lag_of, sync_collection

PAIRS = [("qdrant", "lancedb"), ("lancedb", "pgvector"), ("chroma", "qdrant")]


def _filled(store: VectorStore, n: int, metric: Metric = Metric.L2) -> str:
    cfg = config("docs", dim=8, metric=metric)
    store.create(cfg)
    store.import_batches("docs", [records(cfg, n, flat=True)])
    return "docs"


def _same(a: VectorStore, b: VectorStore, name: str) -> None:
    assert as_dict(a.export(name)) == as_dict(b.export(name))


@pytest.mark.parametrize(("src", "dst"), PAIRS, ids=[f"{a}-{b}" for a, b in PAIRS])
def test_sync_insert_update_delete_then_verify(
    src: str, dst: str, open_store: Callable[[str], VectorStore], tmp_path: Path
) -> None:
    source, standby = open_store(src), open_store(dst)
    name = _filled(source, 60)
    with Ledger(tmp_path / "ledger.sqlite") as ledger:
        first = sync_collection(source, standby, name, ledger, batch_size=16)
        assert first.upserted == 60
        assert first.deleted == 0
        _same(source, standby, name)
        assert first.lag_s is not None
        assert first.lag_s >= 0

        cfg = source.describe(name)
        changed = records(cfg, 5, flat=True, seed=7, start=10)  # ids 10..14, new vectors
        added = records(cfg, 3, flat=True, seed=8, start=100)
        source.import_batches(name, [changed, added])
        gone = [str(i) for i in records(cfg, 60, flat=True).column("id").to_pylist()[40:44]]
        source.delete_ids(name, gone)

        second = sync_collection(source, standby, name, ledger, batch_size=16)
        assert second.upserted == 8  # only what changed travels
        assert second.unchanged == 60 - 5 - 4
        if source.capabilities.consistent_cut == "count-check":
            assert second.deleted == 0
            assert second.deletes_pending == 4
            third = sync_collection(source, standby, name, ledger, batch_size=16)
            assert third.deleted == 4
            assert third.upserted == 0
        else:
            assert second.deleted == 4
        _same(source, standby, name)
        check = check_standby("kb", standby, name, ledger, source=source)
        assert check.ok, check.problems
        assert check.behind == 0
        assert check.standby_records == 59
        assert check.overlap >= 0.99
        assert lag_of(ledger, [name]) is not None


class Crash(Exception):
    pass


def test_killed_mid_apply_resumes_without_duplicates_or_misses(
    open_store: Callable[[str], VectorStore], tmp_path: Path
) -> None:
    source, standby = open_store("lancedb"), open_store("qdrant")
    name = _filled(source, 100)
    path = tmp_path / "ledger.sqlite"
    applied = 0

    def crash_after_three() -> None:
        nonlocal applied
        applied += 1
        if applied == 3:
            raise Crash

    with Ledger(path) as ledger, pytest.raises(Crash):
        sync_collection(source, standby, name, ledger, batch_size=10, chunk_done=crash_after_three)
    assert standby.count(name) == 30
    with Ledger(path) as ledger:  # a new process: the state is on disk
        assert ledger.spooled(name) == 7
        assert lag_of(ledger, [name]) is None  # never fully synced: no lag to claim
        again = sync_collection(source, standby, name, ledger, batch_size=10)
        assert again.resumed_chunks == 7
        assert again.upserted == 70
        assert standby.count(name) == 100
        _same(source, standby, name)
        assert check_standby("kb", standby, name, ledger, source=source).ok


def test_check_finds_a_damaged_standby(
    open_store: Callable[[str], VectorStore], tmp_path: Path
) -> None:
    source, standby = open_store("lancedb"), open_store("lancedb")
    name = _filled(source, 30)
    with Ledger(tmp_path / "l.sqlite") as ledger:
        sync_collection(source, standby, name, ledger)
        cfg = source.describe(name)
        standby.import_batches(name, [records(cfg, 2, flat=True, seed=99)])  # altered behind drkit
        standby.delete_ids(name, ["chunk#3"])
        rep = check_standby("kb", standby, name, ledger)
        assert not rep.ok
        assert rep.altered == ["0", "00000000-0000-4000-8000-000000000001"]
        assert rep.missing == ["chunk#3"]
