"""``testing.automated_drills``: the agent runs the drills the plan marks as automated,
on their cadence, alone, a failing verdict a failed run; an unknown scenario is bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from tests.agent.conftest import write_plan

from drkit.cli.main import main
from drkit.state.store import StateStore


def _with_drills(tmp_path: Path, drills: list[dict[str, object]]) -> Path:
    plan = write_plan(tmp_path)
    data = yaml.safe_load(plan.read_text())
    data["testing"]["automated_drills"] = drills
    plan.write_text(yaml.safe_dump(data, sort_keys=False))
    return plan


@pytest.mark.usefixtures("env")
def test_the_agent_runs_an_automated_drill_and_journals_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = _with_drills(
        tmp_path, [{"scenario": "data-corruption", "every": "1h", "subject": "train"}]
    )
    assert main(["repo", "init", "--plan", str(plan)]) == 0
    assert main(["backup", "train", "--plan", str(plan)]) == 0
    capsys.readouterr()
    assert main(["agent", "run", "--once", "--plan", str(plan), "--json"]) == 0, capsys.readouterr()
    report = json.loads(capsys.readouterr().out)
    (run,) = [r for r in report["runs"] if r["job"] == "drill:data-corruption:train"]
    assert run["status"] == "ok"
    assert "drill data-corruption passed" in run["summary"]
    state = StateStore(tmp_path / "state" / "state.db")
    try:
        finished = [e for e in state.events(kind="drill.") if e.kind != "drill.started"]
        assert finished
        assert [d.scenario for d in state.drills()] == ["data-corruption"]
    finally:
        state.close()
    assert main(["agent", "status", "--plan", str(plan), "--json"]) == 0
    jobs = {j["job"]: j for j in json.loads(capsys.readouterr().out)["jobs"]}
    assert jobs["drill:data-corruption:train"]["every"] == "1h"


@pytest.mark.usefixtures("env")
def test_an_unknown_or_too_frequent_drill_is_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = _with_drills(tmp_path, [{"scenario": "no-such-drill", "every": "1h"}])
    assert main(["agent", "run", "--once", "--plan", str(plan)]) == 2
    err = capsys.readouterr().err
    assert "testing.automated_drills[0].scenario: unknown scenario 'no-such-drill'" in err
    assert "data-corruption" in err  # the hint names the known ones
    plan = _with_drills(tmp_path, [{"scenario": "data-corruption", "every": "100ms"}])
    assert main(["agent", "run", "--once", "--plan", str(plan)]) == 2
    assert "below the agent's minimum" in capsys.readouterr().err
