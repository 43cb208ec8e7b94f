"""drkit's state as data: the agent snapshots it, a replica rebuilds a lost one."""

from __future__ import annotations

import json
import shutil
import sqlite3
import threading
from pathlib import Path

import pytest
from tests.agent.conftest import write_plan

from drkit.cli.main import main
from drkit.state.store import StateStore
from drkit.state.transfer import copy_state


def _json(capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    out = json.loads(capsys.readouterr().out)
    assert isinstance(out, dict)
    return out


@pytest.mark.usefixtures("env")
def test_lost_state_is_rebuilt_from_the_replica(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = write_plan(tmp_path)
    assert main(["repo", "init", "--plan", str(plan)]) == 0
    state_path = tmp_path / "state" / "state.db"
    store = StateStore(state_path)
    store.record_drill(
        {"id": "d1", "started_at": 1.0, "scenario": "region-outage", "verdict": "pass"}
    )
    store.record_event("test.before", "c", "recorded before")
    store.close()
    assert main(["agent", "run", "--once", "--plan", str(plan)]) == 0
    capsys.readouterr()
    before = StateStore(state_path)
    runs_before = [e.data["job"] for e in before.events(kind="agent.run")]
    before.close()
    assert "copy:replica" in runs_before  # the copy ran after the state backup

    # the state is lost, and so is the primary repository and the plan
    shutil.rmtree(state_path.parent)
    shutil.rmtree(tmp_path / "primary")
    plan.unlink()

    replica = f"file://{tmp_path / 'replica'}"
    assert main(["state", "restore", "--repo", replica, "--json"]) == 0
    done = _json(capsys)
    assert done["path"] == str(state_path)
    assert done["replaced"] is False
    back = StateStore(state_path)
    assert [d.id for d in back.drills()] == ["d1"]
    runs_after = [e.data["job"] for e in back.events(kind="agent.run")]
    # the snapshot was taken before the copy (which waits for it) and its own run ended
    assert "copy:replica" not in runs_after
    assert "state-backup" not in runs_after
    assert set(runs_after) < set(runs_before)
    assert [e.message for e in back.events(kind="test.before")] == ["recorded before"]
    back.record_event("x.after", "c", "written after the restore")
    back.close()

    # an existing state is never overwritten without --force
    assert main(["state", "restore", "--repo", replica]) == 2
    assert "already exists" in capsys.readouterr().err
    kept = StateStore(state_path)
    assert kept.events(kind="x.after")
    kept.close()
    assert main(["state", "restore", "--repo", replica, "--force"]) == 0
    replaced = StateStore(state_path)
    assert not replaced.events(kind="x.after")
    assert [d.id for d in replaced.drills()] == ["d1"]
    replaced.close()


@pytest.mark.usefixtures("env")
def test_restore_from_a_repository_without_state_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"file://{tmp_path / 'empty'}"
    assert main(["repo", "init", "--repo", url]) == 0
    capsys.readouterr()
    assert main(["state", "restore", "--repo", url]) == 2
    err = capsys.readouterr().err
    assert "holds no snapshot of drkit's state" in err
    assert "Try:" in err
    assert not (tmp_path / "state" / "state.db").exists()
    # nothing to back up either: exit 2, not a snapshot of nothing
    assert main(["state", "backup", "--repo", url]) == 2
    assert "no drkit state" in capsys.readouterr().err


@pytest.mark.usefixtures("env")
def test_state_backup_command_then_restore_round_trip(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"file://{tmp_path / 'repo'}"
    assert main(["repo", "init", "--repo", url]) == 0
    state_path = tmp_path / "state" / "state.db"
    store = StateStore(state_path)
    for i in range(50):
        store.record_event("test.event", "c", f"event {i}", {"i": i})
    capsys.readouterr()
    assert main(["state", "backup", "--repo", url, "--json"]) == 0
    assert _json(capsys)["events"] == 50
    store.close()
    state_path.unlink()
    assert main(["state", "restore", "--repo", url]) == 0
    back = StateStore(state_path)
    assert [e.data["i"] for e in back.events(kind="test.event")] == list(range(50))
    back.close()


def test_online_copy_is_consistent_while_a_writer_writes(tmp_path: Path) -> None:
    src = tmp_path / "state.db"
    store = StateStore(src)
    stop = threading.Event()

    def write() -> None:
        i = 0
        while not stop.is_set():
            store.record_event("w.e", "c", str(i), {"i": i})
            i += 1

    t = threading.Thread(target=write)
    t.start()
    try:
        counts = [copy_state(src, tmp_path / f"copy{n}.db") for n in range(3)]
    finally:
        stop.set()
        t.join()
    store.close()
    for n, count in enumerate(counts):
        db = sqlite3.connect(tmp_path / f"copy{n}.db")
        ids = [r[0] for r in db.execute("SELECT data FROM events ORDER BY id")]
        db.close()
        assert [json.loads(x)["i"] for x in ids] == list(range(count))  # a prefix, no gap


@pytest.mark.usefixtures("env")
def test_restore_latest_ignores_the_state_snapshots(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"file://{tmp_path / 'repo'}"
    assert main(["repo", "init", "--repo", url]) == 0
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.txt").write_text("a\n")
    assert main(["backup", str(tmp_path / "data"), "--repo", url]) == 0
    StateStore(tmp_path / "state" / "state.db").close()
    assert main(["state", "backup", "--repo", url]) == 0  # newer than the data snapshot
    assert main(["restore", "latest", "--repo", url, "--to", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "a.txt").read_text() == "a\n"


@pytest.mark.usefixtures("env")
def test_a_lost_postgresql_state_is_rebuilt_from_the_replica(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    pg_state_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import psycopg

    # a password in the URL (the test server trusts loopback): never printed
    pg_state_url = pg_state_url.replace("postgres@", "postgres:s3cret@")
    monkeypatch.setenv("DRKIT_STATE", pg_state_url)
    plan = write_plan(tmp_path)
    assert main(["repo", "init", "--plan", str(plan)]) == 0
    store = StateStore(pg_state_url)
    store.record_event("test.before", "c", "recorded before")
    store.close()
    assert main(["agent", "run", "--once", "--plan", str(plan)]) == 0
    capsys.readouterr()
    before = StateStore(pg_state_url)
    runs_before = [e.data["job"] for e in before.events(kind="agent.run")]
    token_before = before.lease("drkit-agent")[0]
    before.close()
    assert token_before is not None
    assert "state-backup" in runs_before

    with psycopg.connect(pg_state_url, autocommit=True) as conn:  # the state is lost
        for table in ("events", "verifications", "drills", "leases"):
            conn.execute(f"DROP TABLE {table}")

    replica = f"file://{tmp_path / 'replica'}"
    assert main(["state", "restore", "--repo", replica, "--json"]) == 0
    done = _json(capsys)
    assert done["path"] == pg_state_url.replace(":s3cret@", ":***@")
    assert done["replaced"] is False
    back = StateStore(pg_state_url)
    assert [e.message for e in back.events(kind="test.before")] == ["recorded before"]
    assert {e.data["job"] for e in back.events(kind="agent.run")} < set(runs_before)
    lease = back.lease("drkit-agent")[0]
    assert lease is not None
    assert lease.token >= 1
    new_id = back.record_event("x.after", "c", "written after the restore")
    assert new_id > max(e.id for e in back.events() if e.kind != "x.after")  # ids move on
    back.close()

    assert main(["state", "restore", "--repo", replica]) == 2  # never without --force
    err = capsys.readouterr().err
    assert "already holds records: not overwritten" in err
    assert "s3cret" not in err
    assert main(["state", "restore", "--repo", replica, "--force", "--json"]) == 0
    assert _json(capsys)["replaced"] is True
    replaced = StateStore(pg_state_url)
    assert not replaced.events(kind="x.after")
    assert [e.message for e in replaced.events(kind="test.before")] == ["recorded before"]
    replaced.close()
