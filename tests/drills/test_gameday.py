from __future__ import annotations

import json
import time
from pathlib import Path
from xml.etree import ElementTree

import pytest

from drkit.cli.main import main
from drkit.state.store import StateStore

from .conftest import WritePlan, serving_plan, single_target_plan, validate_journal

DAY = 86400.0


def test_gameday_scorecard_report_and_json(
    write_plan: WritePlan, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = write_plan(serving_plan())
    report = plan.parent / "out" / "day.html"
    assert main(["gameday", "--plan", str(plan), "--json", "--report", str(report)]) == 0
    day = json.loads(capsys.readouterr().out)
    assert day["passed"] is True
    # a serving-only plan supports the serving half of region-outage too
    assert [r["scenario"] for r in day["scorecard"]] == ["provider-outage", "region-outage"]
    for row in day["scorecard"]:
        assert row["verdict"] == "pass"
        assert row["rto"]["target_s"] == 300.0
    for path in day["journals"]:
        validate_journal(Path(path))
    html = report.read_text()
    at = html.index('aria-label="drill timeline"')  # the charts come first since issue 16
    svg = ElementTree.fromstring(html[html.rindex("<svg", 0, at) : html.index("</svg>", at) + 6])
    bars = svg.findall("{http://www.w3.org/2000/svg}rect")
    steps = sum(len(json.loads(Path(p).read_text())["steps"]) for p in day["journals"])
    assert len(bars) >= steps  # one bar per step (plus the legend)
    assert "provider-outage" in html
    assert "<script" not in html  # self-contained, nothing to load or run
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")

    assert main(["gameday", "--plan", str(plan)]) == 0
    out = capsys.readouterr().out
    assert "Game day scorecard" in out
    assert "PASS" in out


def test_gameday_fails_when_a_drill_fails(
    write_plan: WritePlan, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = write_plan(single_target_plan())
    assert main(["gameday", "--plan", str(plan), "--scenario", "provider-outage"]) == 1
    captured = capsys.readouterr()
    assert "FAIL" in captured.out
    assert "game day: 1 drill(s) failed: provider-outage" in captured.err
    assert main(["gameday", "--plan", str(plan), "--json", "--scenario", "provider-outage"]) == 1
    [row] = json.loads(capsys.readouterr().out)["scorecard"]
    assert row["verdict"] == "fail"
    assert "no secondary target" in row["reasons"][0]


def _record(state: StateStore, scenario: str, verdict: str, at: float) -> None:
    state.record_drill(
        {"id": f"{scenario}-{at}", "scenario": scenario, "verdict": verdict, "started_at": at}
    )


def test_plan_check_flags_overdue_drills_and_restore_tests(
    write_plan: WritePlan, capsys: pytest.CaptureFixture[str]
) -> None:
    data = serving_plan()
    data["datasets"] = [{"name": "train", "path": "./data", "tier": "critical"}]
    plan = write_plan(data)
    assert main(["plan", "check", "--plan", str(plan), "--json"]) in (0, 1)
    first = json.loads(capsys.readouterr().out)
    assert not [v for v in first["violations"] if v["rule"] in ("DR591", "DR592")]  # no state

    state = StateStore(plan.parent / ".drkit" / "state.db")
    now = time.time()
    _record(state, "provider-outage", "pass", now - 100 * DAY)  # cadence 90d: overdue
    _record(state, "provider-outage", "fail", now - DAY)  # a failed drill does not count
    state.record_verification("train", "abc", ok=True, duration_s=1.0, at=now - 40 * DAY)
    state.close()
    assert main(["plan", "check", "--plan", str(plan), "--json"]) == 1
    found = {
        (v["rule"], v["field"], v["severity"]): v["message"]
        for v in json.loads(capsys.readouterr().out)["violations"]
        if v["rule"] in ("DR591", "DR592")
    }
    assert "failover drill overdue" in found[("DR591", "testing.failover_drill_every", "error")]
    assert "restore test overdue" in found[("DR592", "datasets[0]", "error")]
    assert (
        "no passing regional failover"
        in found[("DR591", "testing.regional_failover_every", "warning")]
    )

    state = StateStore(plan.parent / ".drkit" / "state.db")
    _record(state, "provider-outage", "pass", now - DAY)
    state.record_verification("train", "abc", ok=True, duration_s=1.0, at=now - DAY)
    state.close()
    assert main(["plan", "check", "--plan", str(plan), "--json"]) in (0, 1)
    errors = [
        v
        for v in json.loads(capsys.readouterr().out)["violations"]
        if v["rule"] in ("DR591", "DR592") and v["severity"] == "error"
    ]
    assert errors == []


def test_interrupted_gameday_leaves_a_partial_report(
    write_plan: WritePlan, monkeypatch: pytest.MonkeyPatch
) -> None:
    from drkit.drills.engine import DrillInterrupted
    from drkit.drills.rehearsal import Rehearsal
    from drkit.workspace import Workspace, run_gameday

    def ctrl_c(self: Rehearsal, *args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(Rehearsal, "fail", ctrl_c)
    plan = write_plan(serving_plan())
    ws = Workspace.load(plan)
    report = plan.parent / "partial.html"
    with pytest.raises(DrillInterrupted):
        run_gameday(ws, report=report)
    assert "INTERRUPTED" in report.read_text()
    assert [d.verdict for d in ws.drill_history()] == ["interrupted"]  # it stopped there
    ws.close()


def test_gameday_refuses_bad_scenarios_before_running_any(
    write_plan: WritePlan, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = write_plan(serving_plan())
    args = ["gameday", "--plan", str(plan), "--scenario", "provider-outage"]
    assert main([*args, "--scenario", "nope"]) == 2
    assert "unknown scenario 'nope'" in capsys.readouterr().err
    assert main([*args, "--scenario", "data-corruption"]) == 2
    assert "cannot run 'data-corruption'" in capsys.readouterr().err
    assert not (plan.parent / ".drkit" / "drills").exists()  # nothing ran


def _cadence_findings(plan: Path, capsys: pytest.CaptureFixture[str]) -> dict[tuple[str, str], str]:
    assert main(["plan", "check", "--plan", str(plan), "--json"]) in (0, 1)
    return {
        (v["field"], v["severity"]): v["message"]
        for v in json.loads(capsys.readouterr().out)["violations"]
        if v["rule"] in ("DR591", "DR592")
    }


def _gameday(state: StateStore, passed: bool, at: float) -> None:
    state.record_event(
        "gameday.completed", "drill-test", "", {"drills": [], "passed": passed}, at=at
    )


def test_a_failed_gameday_does_not_satisfy_the_gameday_cadence(
    write_plan: WritePlan, capsys: pytest.CaptureFixture[str]
) -> None:
    data = serving_plan()
    data["testing"]["gameday_every"] = "180d"
    plan = write_plan(data)
    state = StateStore(plan.parent / ".drkit" / "state.db")
    now = time.time()
    _gameday(state, False, now - DAY)
    found = _cadence_findings(plan, capsys)
    # no passing game day yet, and the newest one failed: an error, not "ok"
    assert "the last game day failed" in found[("testing.gameday_every", "error")]
    assert "none has passed yet" in found[("testing.gameday_every", "error")]

    _gameday(state, True, now - 2 * DAY)  # an older pass does not hide the newer failure
    assert (
        "the last game day failed"
        in _cadence_findings(plan, capsys)[("testing.gameday_every", "error")]
    )
    _gameday(state, True, now - 60)
    state.close()
    assert ("testing.gameday_every", "error") not in _cadence_findings(plan, capsys)


def test_a_failed_drill_after_a_passing_one_is_reported(
    write_plan: WritePlan, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = write_plan(serving_plan())
    state = StateStore(plan.parent / ".drkit" / "state.db")
    now = time.time()
    _record(state, "provider-outage", "pass", now - 10 * DAY)  # within 90d
    _record(state, "provider-outage", "interrupted", now - 5 * DAY)  # no verdict: no failure
    assert ("testing.failover_drill_every", "error") not in _cadence_findings(plan, capsys)
    _record(state, "provider-outage", "aborted", now - DAY)
    state.close()
    found = _cadence_findings(plan, capsys)
    assert "the last failover drill failed" in found[("testing.failover_drill_every", "error")]


def test_a_restore_test_passes_only_when_all_its_collections_pass(
    write_plan: WritePlan, capsys: pytest.CaptureFixture[str]
) -> None:
    data = serving_plan()
    data["datasets"] = [{"name": "train", "path": "./data", "tier": "critical"}]
    plan = write_plan(data)
    state = StateStore(plan.parent / ".drkit" / "state.db")
    now = time.time()
    run = {"run": "r1"}
    state.record_verification("train", "a", ok=True, duration_s=1, details=run, at=now - 60)
    state.record_verification("train", "b", ok=False, duration_s=1, details=run, at=now - 60)
    found = _cadence_findings(plan, capsys)
    assert "train: the last restore test failed" in found[("datasets[0]", "error")]
    # a later run of which every check was ok counts
    state.record_verification("train", "a", ok=True, duration_s=1, details={"run": "r2"}, at=now)
    state.close()
    assert ("datasets[0]", "error") not in _cadence_findings(plan, capsys)
    assert ("datasets[0]", "warning") not in _cadence_findings(plan, capsys)


def test_last_success_ignores_failed_gamedays(write_plan: WritePlan) -> None:
    from drkit.workspace import Workspace

    plan = write_plan(serving_plan())
    with Workspace.load(plan) as ws:
        _gameday(ws.state(), False, 1000.0)
        assert ws.last_success("gameday") is None
        assert ws.last_failure("gameday") is not None
        _gameday(ws.state(), True, 2000.0)
        last = ws.last_success("gameday")
        assert last is not None
        assert last.timestamp() == 2000.0
