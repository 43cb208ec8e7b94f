"""data-corruption and region-outage on the demo's example stack (small), real repositories."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from drkit.cli.main import main
from drkit.drills.data import fingerprint
from drkit.replication.vectors import collection_fingerprint
from drkit.workspace import Workspace
from drkit.workspace.demo import (
    backup_all,
    build_stack,
    copy_to_replicas,
    init_repositories,
    verify_all,
    write_after_backup,
)

from .conftest import validate_journal

Build = Callable[..., Path]


@pytest.fixture
def build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Build:
    """The example stack, with as much of the protection cycle done as the test asks."""
    monkeypatch.setenv("DRKIT_KDF", "fast")
    monkeypatch.delenv("DRKIT_STATE", raising=False)

    def make(*, copy: bool = True, verify: bool = True, edit: Any = None) -> Path:
        plan = build_stack(tmp_path / "stack", seed=3, size="small")
        if edit is not None:
            data = yaml.safe_load(plan.read_text())
            edit(data)
            plan.write_text(yaml.safe_dump(data, sort_keys=False))
        ws = Workspace.load(plan)
        try:
            init_repositories(ws)
            backup_all(ws)
            if copy:
                copy_to_replicas(ws)
            if verify:
                verify_all(ws)
            write_after_backup(ws, seed=3)
        finally:
            ws.close()
        return plan

    return make


def run(plan: Path, scenario: str, capsys: pytest.CaptureFixture[str], *extra: str) -> Any:
    code = main(["drill", "run", scenario, "--plan", str(plan), "--json", *extra])
    out = json.loads(capsys.readouterr().out)
    out["exit_code"] = code
    return out


def test_data_corruption_detects_restores_and_counts_writes_lost(
    build: Build, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = build()
    live = plan.parent / "data" / "train"
    before = fingerprint(live)
    out = run(plan, "data-corruption", capsys, "--seed", "5", "--subject", "train")
    assert out["exit_code"] == 0, out["reasons"]
    assert out["verdict"] == "pass"
    m = out["metrics"]
    assert m["files_deleted"] >= 1
    assert m["files_altered"] >= 1
    assert m["files_damaged_detected"] >= 1
    assert m["writes_lost"] == 3  # the three files written after the verified snapshot
    assert out["rpo"]["measured_s"] > 0
    assert "3 writes since the verified snapshots are lost (3 in train)" in out["rpo"]["detail"]
    assert out["detection"]["measured_s"] is not None
    validate_journal(Path(out["journal_path"]))
    assert fingerprint(live) == before  # the drill worked on a sandbox
    assert not list((plan.parent / ".drkit" / "scratch").glob("data-corruption-*"))

    again = run(plan, "data-corruption", capsys, "--seed", "5", "--subject", "train")
    first_fault = next(s for s in out["steps"] if s["phase"] == "fault")["data"]
    second_fault = next(s for s in again["steps"] if s["phase"] == "fault")["data"]
    assert first_fault == second_fault  # seeded: the same files are hit

    ws = Workspace.load(plan)
    assert ws.last_success("restore_test", "train") is not None
    ws.close()


def test_data_corruption_of_a_vector_collection(
    build: Build, capsys: pytest.CaptureFixture[str]
) -> None:
    """The real LanceDB collection's sandbox copy loses records and vectors; detected
    against the verified snapshot's index, restored atomically, checked record by record;
    the writes since the snapshot (3 new, 3 changed records) are counted."""
    plan = build()
    ws = Workspace.load(plan)
    with ws.vector_store("kb") as store:
        live_before = collection_fingerprint(store, "docs")
    out = run(plan, "data-corruption", capsys, "--seed", "5", "--subject", "kb")
    assert out["exit_code"] == 0, out["reasons"]
    m = out["metrics"]
    assert m["records_deleted"] == 5  # 10% of 43 records, rounded up
    assert m["vectors_overwritten"] == 5
    # every record hit is found; records changed since the snapshot differ from it too
    assert m["records_damaged_detected"] >= 10
    assert m["writes_lost"] == m["record_writes_lost"] == 6
    assert "(6 in kb/docs)" in out["rpo"]["detail"]
    detect = next(s for s in out["steps"] if s["name"].startswith("detect kb/docs"))
    fault = next(s for s in out["steps"] if s["phase"] == "fault")
    assert set(fault["data"]["deleted"]) <= set(detect["data"]["missing"])
    assert set(fault["data"]["overwritten"]) <= set(detect["data"]["altered"])
    validate_journal(Path(out["journal_path"]))
    with ws.vector_store("kb") as store:
        assert collection_fingerprint(store, "docs") == live_before  # live data untouched
        assert store.list_collections() == ["docs"]  # sandboxes dropped
    assert ws.last_success("restore_test", "kb") is not None
    ws.close()

    again = run(plan, "data-corruption", capsys, "--seed", "5", "--subject", "kb")
    fault = [next(s for s in o["steps"] if s["phase"] == "fault")["data"] for o in (out, again)]
    assert fault[0] == fault[1]  # seeded: the same records are hit

    both = run(plan, "data-corruption", capsys)  # default: every data component
    assert both["exit_code"] == 0, both["reasons"]
    assert both["metrics"]["writes_lost"] == 3 + 6 + 0  # train, kb/docs, golden-qa


def test_data_corruption_without_verified_snapshot_fails(
    build: Build, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = build(verify=False)
    for subject, name in (("train", "train"), ("kb", "kb/docs")):
        out = run(plan, "data-corruption", capsys, "--subject", subject)
        assert out["exit_code"] == 1
        # found before the sandbox is built (issue 10 item 3): the drill aborts in its
        # steady state (it was "fail", found after copying and corrupting the sandbox)
        assert out["verdict"] == "aborted"
        assert f"no verified snapshot of {name!r}" in out["reasons"][0]
        assert not [s for s in out["steps"] if s["name"].startswith("copy ")]
        assert [s["status"] for s in out["steps"] if s["phase"] == "rollback"] == ["ok", "ok"]
    assert not list((plan.parent / ".drkit" / "scratch").glob("data-corruption-*"))
    ws = Workspace.load(plan)
    with ws.vector_store("kb") as store:
        assert store.list_collections() == ["docs"]  # the sandbox collection was dropped
    ws.close()


def test_data_corruption_refuses_a_reembedded_collection(
    build: Build, capsys: pytest.CaptureFixture[str]
) -> None:
    """The live collection was re-embedded (other dimension) after the verified snapshot:
    restoring it would bring back the old model's vectors; found before any sandbox."""
    from drkit.connectors.vectorstore.base import CollectionConfig, VectorField, make_batch

    plan = build()
    ws = Workspace.load(plan)
    with ws.vector_store("kb") as store:
        old = store.describe("docs")
        dim = old.vectors[0].dimension // 2
        store.drop("docs")
        cfg = CollectionConfig(name="docs", vectors=(VectorField("", dim, old.vectors[0].metric),))
        store.create(cfg)
        store.import_batches(
            "docs", [make_batch(cfg, ["a", "b"], {"": [[0.5] * dim, [0.25] * dim]}, [{}, {}])]
        )
    ws.close()
    out = run(plan, "data-corruption", capsys, "--subject", "kb")
    assert out["exit_code"] == 1
    assert out["verdict"] == "aborted"
    assert f"{dim}-d" in out["reasons"][0]
    assert "re-embedded" in out["reasons"][0]
    assert not [s for s in out["steps"] if s["name"].startswith("copy ")]


def test_region_outage_serves_and_restores_from_the_other_region(
    build: Build, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = build()
    out = run(plan, "region-outage", capsys)
    assert out["exit_code"] == 0, out["reasons"]
    m = out["metrics"]
    assert m["components_restored"] == 3  # kb, train, golden-qa
    assert m["collections_restored"] == 1
    assert m["records_restored"] == 40  # kb/docs as backed up, before the later writes
    assert m["client_visible_errors"] == 0
    assert m["serving_rto_s"] <= out["rto"]["measured_s"]
    restore_step = next(s for s in out["steps"] if s["name"].startswith("restore every"))
    tests = restore_step["data"]["restore_tests"]
    assert {t["repository"] for t in tests} == {"replica"}
    assert [t["collection"] for t in tests if t["component"] == "kb"] == ["docs"]
    validate_journal(Path(out["journal_path"]))
    ws = Workspace.load(plan)
    with ws.vector_store("kb") as store:
        assert store.list_collections() == ["docs"]  # the scratch restore was dropped
    assert ws.last_success("restore_test", "kb") is not None
    ws.close()


def test_region_outage_without_replica_fails(
    build: Build, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = build(copy=False)
    out = run(plan, "region-outage", capsys)
    assert out["exit_code"] == 1
    assert any("no replica outside region 'eu-west' holds 'kb'" in r for r in out["reasons"])
    rollback = [s for s in out["steps"] if s["phase"] == "rollback"]
    assert [s["status"] for s in rollback] == ["ok", "ok", "ok"]


def test_region_outage_without_target_elsewhere_fails(
    build: Build, capsys: pytest.CaptureFixture[str]
) -> None:
    def one_region(data: dict[str, Any]) -> None:
        for t in data["serving"]["routes"][0]["targets"]:
            t["region"] = "eu-west"

    plan = build(edit=one_region)
    out = run(plan, "region-outage", capsys)
    assert out["exit_code"] == 1
    assert any("no target outside region 'eu-west'" in r for r in out["reasons"])


def test_unknown_region_and_subject_are_bad_input(
    build: Build, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = build(copy=False, verify=False)
    assert main(["drill", "run", "region-outage", "--region", "mars", "--plan", str(plan)]) == 2
    assert "nothing of plan 'demo-assistant' is in region 'mars'" in capsys.readouterr().err
    assert main(["drill", "run", "data-corruption", "--subject", "nope", "--plan", str(plan)]) == 2
    assert "one of: kb, train, golden-qa" in capsys.readouterr().err


def test_interrupted_data_drill_removes_its_sandbox(build: Build) -> None:
    from drkit.drills.engine import DrillInterrupted
    from drkit.drills.scenarios import DrillOptions

    plan = build()
    ws = Workspace.load(plan)

    def interrupt(*args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt

    import drkit.drills.scenarios.data_corruption as dc

    original = dc.diff  # the file fingerprint diff: first called while detecting
    dc.diff = interrupt  # Ctrl-C while detecting, after the fault
    try:
        with pytest.raises(DrillInterrupted) as info:
            ws.run_drill("data-corruption", DrillOptions(seed=1))  # kb, then the files
    finally:
        dc.diff = original
    journal = info.value.journal
    assert journal.verdict == "interrupted"
    assert [s.phase for s in journal.steps][-1] == "rollback"
    assert not list((plan.parent / ".drkit" / "scratch").glob("data-corruption-*"))
    with ws.vector_store("kb") as store:
        assert store.list_collections() == ["docs"]  # the sandbox collection was dropped
    assert ws.drill_history("data-corruption")[0].verdict == "interrupted"
    ws.close()


def test_data_corruption_live_repairs_the_real_collection(
    build: Build, capsys: pytest.CaptureFixture[str]
) -> None:
    """--live: the live collection itself is damaged, then repaired as restore --replace
    does; it ends equal to the verified snapshot (the writes since it are lost)."""
    from drkit.replication.vectors import open_snapshot, snapshot_fingerprint

    plan = build()
    out = run(
        plan, "data-corruption", capsys, "--seed", "5", "--subject", "kb", "--live", "in-place"
    )
    assert out["exit_code"] == 0, out["reasons"]
    assert not [s for s in out["steps"] if s["name"].startswith("copy ")]
    recover = next(s for s in out["steps"] if s["name"].startswith("restore kb/docs"))
    assert recover["data"]["replaced"]["action"] == "replaced"
    assert out["metrics"]["record_writes_lost"] == 6
    ws = Workspace.load(plan)
    with ws.stack().open_repository("primary") as repo, ws.vector_store("kb") as store:
        opened = open_snapshot(repo, recover["data"]["restore_tests"][0]["snapshot"])
        assert collection_fingerprint(store, "docs") == snapshot_fingerprint(opened)
        assert store.list_collections() == ["docs"]
    ws.close()


def test_interrupted_live_drill_repairs_the_collection(build: Build) -> None:
    import drkit.drills.scenarios.data_corruption as dc
    from drkit.drills.engine import DrillInterrupted
    from drkit.drills.scenarios import DrillOptions
    from drkit.replication.vectors import open_snapshot, snapshot_fingerprint

    plan = build()
    ws = Workspace.load(plan)

    def interrupt(*args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt

    original = dc.diff_collection
    dc.diff_collection = interrupt  # Ctrl-C while detecting: the live collection is damaged
    try:
        with pytest.raises(DrillInterrupted) as info:
            ws.run_drill("data-corruption", DrillOptions(seed=1, subject="kb", live=True))
    finally:
        dc.diff_collection = original
    steps = info.value.journal.steps
    assert [s.status for s in steps if s.phase == "rollback"] == ["ok", "ok"]
    snap = next(s.data["snapshot"] for s in steps if "snapshot" in s.data)
    with ws.stack().open_repository("primary") as repo, ws.vector_store("kb") as store:
        assert collection_fingerprint(store, "docs") == snapshot_fingerprint(
            open_snapshot(repo, snap)
        )
        assert store.list_collections() == ["docs"]
    ws.close()
