"""``plan check`` beside a state: the measured RPO next to the computed one and the
target, and DR594 when the measured one exceeds the target."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import yaml
from tests.agent.conftest import write_plan

from drkit.cli.main import main


@pytest.mark.usefixtures("env")
def test_measured_rpo_beside_the_target_and_dr594(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = write_plan(tmp_path, testing={})
    assert main(["repo", "init", "--plan", str(plan)]) == 0
    capsys.readouterr()
    assert main(["plan", "check", "--plan", str(plan), "--json"]) in (0, 1)
    assert "rpo" not in json.loads(capsys.readouterr().out)  # no state yet: plan alone

    assert main(["agent", "run", "--once", "--plan", str(plan)]) == 0
    capsys.readouterr()
    assert main(["plan", "check", "--plan", str(plan), "--json"]) in (0, 1)
    doc = json.loads(capsys.readouterr().out)
    rows = {(r["component"], r["repository"]): r for r in doc["rpo"]}
    train, golden = rows[("train", "primary")], rows[("golden", "primary")]
    assert (train["target_s"], train["computed_s"]) == (10.0, 5.0)
    assert train["measured_s"] is not None
    assert golden["measured_s"] is not None
    assert golden["measured_s"] < golden["target_s"]  # 1h
    flagged = {v["message"].split(" ")[0] for v in doc["violations"] if v["rule"] == "DR594"}
    assert "golden" not in flagged
    assert ("train" in flagged) == any(
        r["exceeded"] for r in doc["rpo"] if r["component"] == "train"
    )

    data = yaml.safe_load(plan.read_text())
    data["tiers"]["critical"]["rpo"] = "1s"  # now every snapshot of train is too old
    plan.write_text(yaml.safe_dump(data, sort_keys=False))
    time.sleep(1.1)
    assert main(["plan", "check", "--plan", str(plan), "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    found = [v for v in doc["violations"] if v["rule"] == "DR594"]
    assert {(v["severity"], v["field"]) for v in found} == {("error", "datasets[0].tier")}
    assert any("train in replica (us): measured RPO" in v["message"] for v in found)
    assert any("train in primary (eu): measured RPO" in v["message"] for v in found)
    assert main(["plan", "check", "--plan", str(plan)]) == 1
    out = capsys.readouterr().out
    assert "Recovery points: computed from the plan, measured in the repositories" in out
    assert "measured-rpo-exceeded" in out or "DR594" in out
