from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from drkit.errors import InputError
from drkit.state.store import StateStore, default_state_path


def test_events_round_trip_and_filters(store: StateStore) -> None:
    store.record_event("gateway.failover", "assistant", "primary down", {"to": "b"}, at=10.0)
    store.record_event("gateway.recovered", "assistant", "primary back", at=20.0)
    store.record_event("drill.step", "kb", "fault injected", at=15.0)

    assert [e.message for e in store.events()] == ["primary down", "fault injected", "primary back"]
    assert [e.kind for e in store.events(kind="gateway.")] == [
        "gateway.failover",
        "gateway.recovered",
    ]
    assert [e.kind for e in store.events(kind="gateway.failover")] == ["gateway.failover"]
    assert store.events(component="kb")[0].data == {}
    assert store.events(since=16.0)[0].message == "primary back"
    assert store.events(kind="gateway.failover")[0].data == {"to": "b"}
    assert len(store.events(limit=1)) == 1


def test_state_survives_reopen(new_location: Callable[[str], str]) -> None:
    path = new_location("nested/state.db")
    first = StateStore(path)
    first.record_verification("kb", "abc123", ok=True, duration_s=4.5, details={"count": 10})
    first.record_verification("kb", "def456", ok=False, duration_s=1.0)
    first.record_drill(
        {"id": "d1", "scenario": "provider-outage", "started_at": 5.0, "verdict": "pass"}
    )
    first.close()

    again = StateStore(path)
    assert [v.snapshot for v in again.verifications("kb")] == ["abc123", "def456"]
    last = again.last_verification("kb")
    assert last is not None
    assert (last.snapshot, last.duration_s, last.details) == ("abc123", 4.5, {"count": 10})
    last_any = again.last_verification("kb", ok_only=False)
    assert last_any is not None
    assert last_any.snapshot == "def456"
    assert again.last_verification("other") is None
    (drill,) = again.drills("provider-outage")
    assert drill.verdict == "pass"
    assert drill.journal["id"] == "d1"
    again.close()


def test_failed_write_leaves_nothing(store: StateStore) -> None:
    with pytest.raises(KeyError):
        store.record_drill({"id": "x", "scenario": "s", "started_at": 1.0})  # no verdict
    assert store.drills() == []


def _writer(path: str, n: int) -> None:
    store = StateStore(path)
    for i in range(n):
        store.record_event("load", "c", f"e{i}")
    store.close()


def test_concurrent_processes_write_safely(new_location: Callable[[str], str]) -> None:
    path = new_location("s.db")
    StateStore(path).close()
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(path, 50)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    check = StateStore(path)
    assert len(check.events(kind="load")) == 150
    check.close()


def _open_at_once(path: str, barrier: Any) -> None:
    barrier.wait()
    StateStore(path).close()


def test_processes_creating_the_same_file_at_once_all_open_it(tmp_path: Path) -> None:
    # several `gateway serve` started together on a new plan: without retrying SQLite's
    # immediate "database is locked" on the switch to WAL, about one in six failed
    ctx = multiprocessing.get_context("fork")
    for round_ in range(15):
        path = str(tmp_path / f"s{round_}.db")
        barrier = ctx.Barrier(6)
        procs = [ctx.Process(target=_open_at_once, args=(path, barrier)) for _ in range(6)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(60)
        assert [p.exitcode for p in procs] == [0] * 6, f"round {round_}"


def test_default_path_and_unwritable_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DRKIT_STATE", raising=False)
    assert default_state_path(tmp_path / "drkit.yaml") == tmp_path / ".drkit" / "state.db"
    monkeypatch.setenv("DRKIT_STATE", str(tmp_path / "x.db"))
    assert default_state_path() == tmp_path / "x.db"
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(InputError, match="state directory"):
        StateStore(blocker / "sub" / "state.db")
