"""security-breach on the demo's example stack (small): real repositories, the real
LanceDB collection and dataset in sandboxes, keys rotated for real, an incident drafted."""

from __future__ import annotations

from pathlib import Path

import pytest

from drkit.drills.data import fingerprint
from drkit.plan.loader import load_plan
from drkit.replication.vectors import collection_fingerprint
from drkit.state.store import StateStore, plan_state_path
from drkit.status.incidents import Incidents
from drkit.workspace import Workspace

from .conftest import validate_journal
from .test_data_scenarios import Build, build, run

__all__ = ["build"]  # the fixture


def test_security_breach_identifies_contains_restores_and_drafts_a_notice(
    build: Build, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = build()
    ws = Workspace.load(plan)
    with ws.vector_store("kb") as store:
        kb_before = collection_fingerprint(store, "docs")
    train_before = fingerprint(plan.parent / "data" / "train")
    with ws.stack().open_repository("primary") as repo:
        keys_before = {k.id for k in repo.list_keys()}
    ws.close()

    out = run(plan, "security-breach", capsys, "--seed", "7")
    assert out["exit_code"] == 0, out["reasons"]
    assert out["verdict"] == "pass"
    validate_journal(Path(out["journal_path"]))
    m = out["metrics"]
    assert m["records_affected"] >= m["records_deleted"] + m["files_deleted"]
    assert 0 < m["identify_s"] <= m["contain_s"] <= m["restore_s"]
    assert out["detection"]["measured_s"] is not None
    assert out["rto"]["measured_s"] is not None
    steps = {s["name"]: s for s in out["steps"]}
    rotate = steps["rotate the repository key; the compromised one fails"]
    assert rotate["status"] == "ok"
    leak = steps["a repository key of primary is compromised"]
    assert leak["data"]["compromised_key"] == rotate["data"]["removed_key"]
    notice = steps["open an incident with a drafted customer notice"]["data"]
    assert "kb/docs" in notice["customer_notice"]
    assert "train" in notice["customer_notice"]

    # the live data is untouched, the drill's keys are gone, the operator's key still opens
    ws = Workspace.load(plan)
    with ws.vector_store("kb") as store:
        assert collection_fingerprint(store, "docs") == kb_before
    assert fingerprint(plan.parent / "data" / "train") == train_before
    with ws.stack().open_repository("primary") as repo:
        assert {k.id for k in repo.list_keys()} == keys_before
    ws.close()

    # the incident was drafted, never public, and discarded by the rollback
    loaded = load_plan(plan)
    state = StateStore(plan_state_path(loaded))
    inc = Incidents(state, []).get(notice["incident"])
    assert not inc.public
    assert inc.discarded
    assert inc.severity == "sev1"
    assert inc.updates[0].body == notice["customer_notice"]
    state.close()
