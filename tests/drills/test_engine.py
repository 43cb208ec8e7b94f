from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from drkit.drills.engine import (
    Drill,
    DrillContext,
    DrillInterrupted,
    Step,
    run_drill,
    write_journal,
)
from drkit.drills.journal import Journal

ROOT = Path(__file__).resolve().parents[2]


class FakeClock:
    """A clock the steps advance, so measured durations are exact."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _drill(
    clock: FakeClock,
    *,
    recover_after: float = 3.0,
    fail_verify: bool = False,
    rollback_log: list[str] | None = None,
    **targets: float,
) -> Drill:
    log = rollback_log if rollback_log is not None else []

    def detect(ctx: DrillContext) -> None:
        clock.now += 1.0
        ctx.mark("detected")

    def recover(ctx: DrillContext) -> None:
        clock.now += recover_after - 1.0
        ctx.mark("recovered")
        ctx.record_rpo(0.0, "stateless")
        ctx.metric("client_errors", 0)

    def verify(ctx: DrillContext) -> bool:
        return not fail_verify

    return Drill(
        scenario="unit",
        description="a unit drill",
        steady_state=(Step("healthy", lambda ctx: True),),
        fault=(Step("break", detect),),
        recovery=(Step("fail over", recover),),
        verify=(Step("answers", verify),),
        rollback=(Step("restore", lambda ctx: log.append("rolled back")),),
        **targets,
    )


def test_passing_drill_measures_against_targets() -> None:
    clock = FakeClock()
    journal = run_drill(_drill(clock, rto_target_s=5.0, rpo_target_s=60.0), seed=7, clock=clock)
    assert journal.verdict == "pass", journal.reasons
    assert journal.detection.measured_s == pytest.approx(1.0)
    assert journal.rto.measured_s == pytest.approx(3.0)
    assert journal.rto.met is True
    assert journal.rpo.measured_s == 0.0
    assert journal.rpo.met is True
    assert journal.metrics == {"client_errors": 0}
    assert [s.phase for s in journal.steps] == [
        "steady_state",
        "fault",
        "recovery",
        "verify",
        "rollback",
    ]


def test_missed_rto_fails_with_reason() -> None:
    clock = FakeClock()
    journal = run_drill(_drill(clock, recover_after=10.0, rto_target_s=5.0), clock=clock)
    assert journal.verdict == "fail"
    assert journal.rto.met is False
    assert any("RTO 10.000s exceeds the target 5.000s" in r for r in journal.reasons)


def test_failed_verify_fails_and_rollback_still_runs() -> None:
    clock = FakeClock()
    log: list[str] = []
    journal = run_drill(_drill(clock, fail_verify=True, rollback_log=log), clock=clock)
    assert journal.verdict == "fail"
    assert log == ["rolled back"]
    assert "verify step 'answers' failed" in journal.reasons[0]


def test_steady_state_failure_aborts_without_fault() -> None:
    injected: list[int] = []
    drill = Drill(
        scenario="unit",
        description="",
        steady_state=(Step("healthy", lambda ctx: False),),
        fault=(Step("break", lambda ctx: injected.append(1)),),
        rollback=(Step("restore", lambda ctx: None),),
    )
    journal = run_drill(drill)
    assert journal.verdict == "aborted"
    assert injected == []
    assert journal.steps[-1].phase == "rollback"


def test_interrupt_runs_rollback_and_reports(tmp_path: Path) -> None:
    log: list[str] = []

    def ctrl_c(ctx: DrillContext) -> None:
        raise KeyboardInterrupt

    drill = Drill(
        scenario="unit",
        description="",
        fault=(Step("break", ctrl_c),),
        rollback=(Step("restore", lambda ctx: log.append("rolled back")),),
    )
    with pytest.raises(DrillInterrupted) as info:
        run_drill(drill)
    assert log == ["rolled back"]
    assert info.value.journal.verdict == "interrupted"


def test_seeded_runs_repeat() -> None:
    def draw(ctx: DrillContext) -> None:
        ctx.metric("draw", ctx.rng.random())

    drill = Drill(scenario="unit", description="", fault=(Step("draw", draw),))
    assert run_drill(drill, seed=3).metrics == run_drill(drill, seed=3).metrics
    assert run_drill(drill, seed=3).metrics != run_drill(drill, seed=4).metrics


def test_journal_file_validates_against_published_schema(tmp_path: Path) -> None:
    clock = FakeClock()
    journal = run_drill(_drill(clock, rto_target_s=5.0), clock=clock)
    path = write_journal(journal, tmp_path)
    data = json.loads(path.read_text())
    schema = json.loads((ROOT / "docs" / "drill-journal.schema.json").read_text())
    jsonschema.validate(data, schema)
    assert Journal.model_validate(data) == journal
    data["verdict"] = "maybe"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(data, schema)


def test_published_schema_is_current() -> None:
    published = json.loads((ROOT / "docs" / "drill-journal.schema.json").read_text())
    assert published == Journal.model_json_schema(), (
        "regenerate with: python -m drkit.drills.schema > docs/drill-journal.schema.json"
    )
