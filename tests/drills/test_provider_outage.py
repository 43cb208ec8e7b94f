from __future__ import annotations

import json
from pathlib import Path

import pytest

from drkit.cli.main import main
from drkit.drills.scenarios import DrillOptions
from drkit.workspace import Workspace

from .conftest import WritePlan, serving_plan, single_target_plan, validate_journal


def test_provider_outage_passes_and_is_journaled(
    write_plan: WritePlan, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = write_plan(serving_plan())
    assert main(["drill", "run", "provider-outage", "--plan", str(plan), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["verdict"] == "pass", out["reasons"]
    assert out["metrics"]["client_visible_errors"] == 0
    assert out["metrics"]["primary_attempts"] >= 1
    assert out["metrics"]["black_hole_attempts"] == 0  # already ejected by the 503s
    assert any(m["name"] == "gateway.ejection" for m in out["markers"])
    assert out["rto"]["met"] is True
    assert out["rto"]["target_s"] == 300.0
    assert out["rpo"]["measured_s"] == 0.0
    assert out["detection"]["measured_s"] is not None
    assert [s["phase"] for s in out["steps"]][-1] == "rollback"
    assert all(s["status"] == "ok" for s in out["steps"])

    journal = Path(out["journal_path"])
    assert journal.parent == plan.parent / ".drkit" / "drills"
    assert validate_journal(journal)["id"] == out["id"]

    assert main(["drill", "history", "--plan", str(plan), "--json"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert (row["id"], row["verdict"], row["scenario"]) == (out["id"], "pass", "provider-outage")


def test_no_secondary_target_fails_with_reason(
    write_plan: WritePlan, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = write_plan(single_target_plan())
    assert main(["drill", "run", "provider-outage", "--plan", str(plan)]) == 1
    captured = capsys.readouterr()
    assert "no secondary target" in captured.err
    assert "FAIL" in captured.out
    # rollback ran after the failure: every rollback step is in the journal and ok
    ws = Workspace.load(plan)
    [record] = ws.drill_history()
    rollback = [s for s in record.journal["steps"] if s["phase"] == "rollback"]
    assert [s["status"] for s in rollback] == ["ok"] * 4
    assert record.verdict == "fail"
    ws.close()


def test_interrupt_rolls_back_and_records(write_plan: WritePlan) -> None:
    """Ctrl-C in the middle of the fault: rollback clears the faults and stops everything."""
    from drkit.drills.engine import DrillInterrupted
    from drkit.drills.rehearsal import Rehearsal

    plan = write_plan(serving_plan())
    ws = Workspace.load(plan)
    original = Rehearsal.fail
    seen: list[Rehearsal] = []

    def fail_then_interrupt(self: Rehearsal, name: str, *faults: object) -> None:
        original(self, name, *faults)  # type: ignore[arg-type]
        seen.append(self)
        raise KeyboardInterrupt

    Rehearsal.fail = fail_then_interrupt  # type: ignore[method-assign]
    try:
        with pytest.raises(DrillInterrupted) as info:
            ws.run_drill("provider-outage", DrillOptions(seed=1))
    finally:
        Rehearsal.fail = original  # type: ignore[method-assign]
    journal = info.value.journal
    assert journal.verdict == "interrupted"
    assert "stop the rehearsal" in [s.name for s in journal.steps if s.phase == "rollback"]
    assert seen
    assert seen[0].sims == {}  # simulators stopped
    assert ws.drill_history()[0].verdict == "interrupted"
    ws.close()


def test_bad_input_exits_2(write_plan: WritePlan, capsys: pytest.CaptureFixture[str]) -> None:
    plan = write_plan(serving_plan())
    assert main(["drill", "run", "no-such-drill", "--plan", str(plan)]) == 2
    assert "unknown scenario 'no-such-drill'" in capsys.readouterr().err
    assert main(["drill", "run", "model-regression", "--plan", str(plan)]) == 2
    # runnable now (tests/models/test_model_regression_drill.py), not on a plan whose
    # routes name no registry alias
    assert "no route target follows a model alias" in capsys.readouterr().err
    data = serving_plan()
    del data["serving"]
    plan = write_plan(data)
    assert main(["drill", "run", "provider-outage", "--plan", str(plan)]) == 2
    assert "no serving routes" in capsys.readouterr().err
    assert main(["drill", "run", "provider-outage", "--plan", str(plan.parent / "nope.yaml")]) == 2


def test_drill_list_says_why_not(write_plan: WritePlan, capsys: pytest.CaptureFixture[str]) -> None:
    plan = write_plan(serving_plan())
    assert main(["drill", "list", "--plan", str(plan), "--json"]) == 0
    rows = {r["scenario"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["provider-outage"]["runnable"] is True
    assert rows["security-breach"]["runnable"] is False
    assert "@MODEL:ALIAS" in rows["model-regression"]["why_not"]
