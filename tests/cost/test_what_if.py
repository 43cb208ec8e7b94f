"""``drkit cost --what-if``: the difference a change of tiers makes, worked by hand on
tests/cost/plans.py's plan (plan estimates: 5 GB train, 1 GB notes, 20/GB-month, 10/GB
egress, 300 standby for critical, 1000/hour of critical outage)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from tests.cost.plans import cost_plan

from drkit.cli.main import main
from drkit.cost.availability import YEAR_S

pytestmark = pytest.mark.usefixtures("cli_env")


def _what_if(plan: Path, capsys: pytest.CaptureFixture[str], *specs: str) -> dict[str, Any]:
    capsys.readouterr()
    args = [a for s in specs for a in ("--what-if", s)]
    assert main(["cost", "--plan", str(plan), "--json", *args]) == 0
    doc: dict[str, Any] = json.loads(capsys.readouterr().out)
    assert doc["schema_version"] == 1
    return doc


def test_moving_a_component_to_a_single_region_tier_saves_its_far_copy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = cost_plan(tmp_path, outage_cost_per_hour={"critical": 1000, "standard": 10})
    doc = _what_if(plan, capsys, "train=standard")
    # train leaves critical, and standard is not multi_region: no copy in "far" (us)
    assert doc["changes"] == [
        "train: tier critical -> standard",
        "train: no longer copied to far (other region; its tier standard is not multi_region)",
    ]
    # saved: the replica's 5 GB × 20 and the egress 5 GB × 0.1 × 10
    assert doc["monthly_delta"] == pytest.approx(-(100 + 5))
    assert doc["yearly_delta"] == pytest.approx(-105 * 12)
    tiers = {t["tier"]: t for t in doc["tiers"]}
    assert tiers["critical"]["monthly_delta"] == pytest.approx(-(100 + 100 + 5))
    assert tiers["standard"]["monthly_delta"] == pytest.approx(100)  # its primary copy
    assert doc["outage_loss_year_delta"] == 0  # routes unchanged
    [obj] = doc["objectives"]
    assert obj["name"] == "train"
    assert (obj["before"]["rpo_target_s"], obj["after"]["rpo_target_s"]) == (3600, 86400)
    assert (obj["before"]["rto_target_s"], obj["after"]["rto_target_s"]) == (900, 4 * 3600)
    assert (obj["before"]["offsite_copies"], obj["after"]["offsite_copies"]) == (["far"], [])
    # the risk in plan-check terms: a critical tier's data stays, standard's needs no copy;
    # the human form says the same figures
    assert main(["cost", "--plan", str(plan), "--what-if", "train=standard"]) == 0
    out = capsys.readouterr().out
    assert "-105.00 USD per month" in out
    assert "copies in another region 1 -> 0" in out


def test_a_tier_that_gives_up_multi_region_loses_its_failover_and_pays_for_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = _what_if(cost_plan(tmp_path), capsys, "critical.multi_region=false")
    assert "tier critical: multi_region True -> False" in doc["changes"]
    assert (
        "route chat: targets b dropped (outside eu; its tier critical is not multi_region)"
        in (doc["changes"])
    )
    assert doc["monthly_delta"] == pytest.approx(-105)
    # with the route's only secondary gone, the primary's 99.9% alone
    with_dr = 0.001 * 0.005 + 12 * 12.0 / YEAR_S
    assert doc["outage_loss_year_before"] == pytest.approx(with_dr * 8760 * 1000, abs=0.01)
    assert doc["outage_loss_year_after"] == pytest.approx(0.001 * 8760 * 1000, abs=0.01)
    assert doc["outage_loss_year_delta"] == pytest.approx((0.001 - with_dr) * 8760 * 1000, abs=0.02)
    rules = {f["rule"] for f in doc["new_findings"]}
    assert {"DR101", "DR102", "DR103"} <= rules  # the framework's critical-tier rules
    chat = next(o for o in doc["objectives"] if o["name"] == "chat")
    assert (chat["before"]["targets"], chat["after"]["targets"]) == (["a", "b"], ["a"])


def test_changes_apply_in_order_and_tier_objectives_move(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = _what_if(cost_plan(tmp_path), capsys, "standard.rpo=1h", "notes=critical")
    assert doc["changes"] == ["tier standard: rpo 1d -> 1h", "notes: tier standard -> critical"]
    assert doc["monthly_delta"] == 0  # nothing is copied or dropped: only who pays moves
    notes = next(o for o in doc["objectives"] if o["name"] == "notes")
    assert (notes["before"]["rpo_target_s"], notes["after"]["rpo_target_s"]) == (86400, 900 * 4)


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("nosuch=standard", "no component or route 'nosuch'"),
        ("train=gold", "no tier 'gold'"),
        ("critical.colour=red", "no field 'colour'"),
        ("gold.rto=1h", "no tier 'gold'"),
        ("critical.rto=soon", "critical.rto=soon"),
        ("critical.multi_region=maybe", "takes true or false"),
        ("critical=standard", "is a tier"),
        ("train", "NAME=TIER or TIER.FIELD=VALUE"),
    ],
)
def test_bad_what_if_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], spec: str, words: str
) -> None:
    plan = cost_plan(tmp_path)
    capsys.readouterr()
    assert main(["cost", "--plan", str(plan), "--what-if", spec]) == 2
    err = capsys.readouterr().err
    assert words in err
    assert "Try:" in err
    assert "Traceback" not in err


def test_html_report_with_the_what_if(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plan = cost_plan(tmp_path)
    out = tmp_path / "cost.html"
    args = ["cost", "--plan", str(plan), "--html", str(out), "--what-if", "train=standard"]
    assert main(args) == 0
    assert f"HTML report: {out}" in capsys.readouterr().out
    page = out.read_text()
    assert "<h2>Per tier</h2>" in page
    assert "505.00 USD" in page  # the critical tier before the what-if
    assert "What if train=standard" in page
    assert "-105.00 USD" in page
    assert "plan estimate" in page
    # bad input leaves no page behind and exits 2
    missing = tmp_path / "no" / "such" / "dir" / "cost.html"
    assert main(["cost", "--plan", str(plan), "--html", str(missing)]) == 2
    assert not missing.exists()
