"""``drkit plan check``'s cost rules on tests/cost/plans.py's plan: DR711 (a tier that
is not critical spends more on DR than its outages cost) and DR712 (testing above
``testing.budget``), both warnings, from the plan's estimates and from measured runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.cost.plans import cost_plan

from drkit.cli.main import main

pytestmark = pytest.mark.usefixtures("cli_env")


def _check(plan: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    capsys.readouterr()
    main(["plan", "check", "--plan", str(plan), "--json"])
    doc: dict[str, Any] = json.loads(capsys.readouterr().out)
    return doc


def _cost_rules(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["rule"]: v for v in doc["violations"] if v["rule"] in ("DR711", "DR712")}


def _with_standard_route(plan: Path) -> None:
    """A standard-tier route on one vendor, a standard standby of 50/month."""
    data = yaml.safe_load(plan.read_text())
    target = dict(data["serving"]["routes"][0]["targets"][0], name="s")
    route = {"name": "notes-chat", "tier": "standard", "targets": [target]}
    data["serving"]["routes"].append(route)
    data["cost"]["standby_per_month"]["standard"] = 50
    data["testing"] = {"failover_drill_every": "30d", "budget": 1000}
    plan.write_text(yaml.safe_dump(data, sort_keys=False))


def test_over_investment_and_testing_budget_from_the_plan_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = cost_plan(
        tmp_path,
        outage_cost_per_hour={"critical": 1000, "standard": 5},
        drill_hours_per_year=120,
        drill_cost_per_hour=10,
        responders_per_drill=2,
        responder_cost_per_hour=50,
    )
    _with_standard_route(plan)
    rules = _cost_rules(_check(plan, capsys))
    # standard: storage 1 GB × 20 + standby 50 = 70/month, 840 a year; its route on
    # openai (99.9%) alone: 8.76 h × 5 = 43.80 a year
    dr711 = rules["DR711"]
    assert dr711["severity"] == "warning"
    assert "840.00 USD a year (plan estimates)" in dr711["message"]
    assert "43.80" in dr711["message"]
    assert dr711["field"] == "tiers.standard"
    assert dr711["line"] is not None
    # testing: 120 h a year × (10 + 2 × 50) = 13 200 > 1000
    dr712 = rules["DR712"]
    assert "13,200.00 USD a year" in dr712["message"]
    assert dr712["field"] == "testing.budget"
    # `drkit cost` says the same (one definition)
    capsys.readouterr()
    assert main(["cost", "--plan", str(plan), "--json"]) == 0
    warnings = json.loads(capsys.readouterr().out)["warnings"]
    assert any("tier 'standard'" in w for w in warnings)
    assert any("testing.budget 1,000.00" in w for w in warnings)


def test_within_budget_and_worth_it_says_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = cost_plan(
        tmp_path,
        outage_cost_per_hour={"critical": 1000, "standard": 500},
        drill_hours_per_year=4,
        drill_cost_per_hour=10,
    )
    _with_standard_route(plan)
    doc = _check(plan, capsys)
    assert _cost_rules(doc) == {}
    assert doc["ok"] in (True, False)  # other rules decide; the cost rules only warn


def test_measured_drill_time_is_what_the_budget_is_held_to(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import time

    from drkit.state.store import StateStore

    plan = cost_plan(tmp_path, drill_hours_per_year=0, drill_cost_per_hour=3600)
    _with_standard_route(plan)
    assert "DR712" not in _cost_rules(_check(plan, capsys))  # nothing estimated or measured
    state = StateStore(tmp_path / "state.db")
    now = time.time()
    # a failover drill of 100 s, once every 30 days: 100 s × 3600/h = 100 a run, 1 200 a year
    state.record_drill(
        {
            "id": "d1",
            "scenario": "provider-outage",
            "verdict": "pass",
            "started_at": now - 100,
            "ended_at": now,
        }
    )
    state.close()
    dr712 = _cost_rules(_check(plan, capsys))["DR712"]
    assert "1,200.00 USD a year (measured)" in dr712["message"]
