"""``drkit cost`` on a real repository with real backups: measured sizes are the bytes
the repository stores; without a repository the plan's sizes, labelled as estimates."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.cost.plans import cost_plan as _plan

from drkit.cli.main import main
from drkit.repository.repo import Repository
from drkit.workspace.access import repository_at

pytestmark = pytest.mark.usefixtures("cli_env")


def _cost(plan: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    capsys.readouterr()
    assert main(["cost", "--plan", str(plan), "--json"]) == 0
    doc: dict[str, Any] = json.loads(capsys.readouterr().out)
    assert doc["schema_version"] == 1
    return doc


def _lines(doc: dict[str, Any], category: str) -> list[dict[str, Any]]:
    return [x for x in doc["lines"] if x["category"] == category]


def test_plan_estimate_before_any_repository(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = _cost(_plan(tmp_path), capsys)
    storage = {(x["component"], x["region"]): x for x in _lines(doc, "storage")}
    assert storage["train", "eu"]["source"] == "plan estimate"
    assert storage["train", "eu"]["monthly"] == pytest.approx(5 * 20.0)
    assert storage["train", "us"]["monthly"] == pytest.approx(5 * 20.0)  # the replica's copy
    assert storage["notes", "eu"]["monthly"] == pytest.approx(20.0)
    assert ("notes", "us") not in storage  # not replicated
    [egress] = _lines(doc, "egress")
    assert egress["source"] == "plan estimate"
    assert egress["monthly"] == pytest.approx(5 * 0.1 * 10.0)  # monthly_change 0.1
    [standby] = _lines(doc, "standby")
    assert (standby["tier"], standby["monthly"]) == ("critical", 300)
    [route] = doc["routes"]
    # two vendors in parallel, plus one failover (connect 2 s + first_token 10 s) per
    # outage of the first (12 a year): worked by hand
    unavailable = 0.001 * 0.005 + 12 * 12.0 / (365 * 86400)
    assert route["availability"] == pytest.approx(1 - unavailable)
    assert route["outage_loss_year"] == pytest.approx(unavailable * 8760 * 1000, rel=1e-6)
    critical = next(t for t in doc["tiers"] if t["tier"] == "critical")
    assert critical["monthly"] == pytest.approx(100 + 100 + 5 + 300)
    # without failover, the primary's SLA alone: 0.1% of a year down
    assert critical["outage_loss_bought_down_year"] == pytest.approx(
        (0.001 - unavailable) * 8760 * 1000, rel=1e-6
    )


def test_measured_sizes_are_the_repository_stored_bytes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = _plan(tmp_path)
    assert main(["repo", "init", "--plan", str(plan)]) == 0
    assert main(["backup", "--plan", str(plan)]) == 0
    (tmp_path / "train" / "b.bin").write_bytes(os.urandom(50_000))
    assert main(["backup", "train", "--plan", str(plan)]) == 0
    (tmp_path / "stray").mkdir()
    (tmp_path / "stray" / "s.bin").write_bytes(os.urandom(30_000))
    args = ["backup", str(tmp_path / "stray"), "--component", "stray", "--plan", str(plan)]
    assert main(args) == 0
    doc = _cost(plan, capsys)
    usage = doc["repositories"]["primary"]
    # what the repository stores, object by object
    with repository_at(f"file://{tmp_path / 'repo'}", "pw") as repo:
        assert isinstance(repo, Repository)
        on_disk = sum(i.size for i in repo.own(""))
        repo.load_index()
        packed = sum(e.length for es in repo.index.packs().values() for e in es)
    assert usage["total_bytes"] == on_disk
    assert sum(usage["components"].values()) == pytest.approx(packed, abs=2)
    # dedup: the text file shared by both components is stored once, split between them;
    # compression: the repetitive text shrinks, the random bytes do not
    assert 250_000 < usage["components"]["train"] < 300_000
    assert 200_000 < usage["components"]["notes"] < 230_000
    storage = {(x["component"], x["region"]): x for x in _lines(doc, "storage")}
    assert storage["train", "eu"]["source"] == "measured"
    assert storage["train", "eu"]["monthly"] == pytest.approx(
        usage["components"]["train"] / 1e9 * 20.0, rel=1e-3
    )
    # the replica was never copied to: still the plan's estimate, and it says why
    assert storage["train", "us"]["source"] == "plan estimate"
    assert "no repository yet" in storage["train", "us"]["basis"]
    # a snapshot of something the plan does not name is billed too, plan-wide
    [stray] = [x for x in _lines(doc, "storage") if x["component"] == "stray"]
    assert (stray["tier"], stray["source"]) == ("-", "measured")
    assert stray["monthly"] == pytest.approx(usage["components"]["stray"] / 1e9 * 20.0)
    assert "no plan component" in stray["basis"]
    [overhead] = [x for x in _lines(doc, "storage") if x["component"] == "primary"]
    assert overhead["monthly"] == pytest.approx(usage["overhead_bytes"] / 1e9 * 20.0, rel=1e-3)
    # egress: everything was added in the last 30 days and is copied to the far replica
    [egress] = _lines(doc, "egress")
    assert egress["source"] == "measured"
    assert egress["monthly"] == pytest.approx(
        usage["new_bytes_month"]["train"] / 1e9 * 10.0, rel=1e-3
    )
    # the human rendering names every source
    assert main(["cost", "--plan", str(plan)]) == 0
    out = capsys.readouterr().out
    for word in ("measured", "plan estimate", "route chat"):
        assert word in out


def test_providers_sla_measured_and_switching_readiness(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import time

    from drkit.state.store import StateStore

    plan = _plan(tmp_path)
    capsys.readouterr()
    # no traffic and no drill yet: the secondary is not proven, exit 1
    assert main(["providers", "--plan", str(plan), "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    [ready] = doc["readiness"]
    assert (ready["target"], ready["served_recently"], ready["ready"]) == ("b", False, False)
    assert {p["vendor"]: p["sla"] for p in doc["providers"]} == {
        "openai": 99.9,
        "anthropic": 99.5,
    }
    now = time.time()
    state = StateStore(tmp_path / "state.db")
    state.record_event("gateway.ejection", "a", "out", {}, at=now - 3600)
    state.record_event("gateway.recovery", "a", "back", {}, at=now - 3600 + 360)
    state.record_event(
        "gateway.failover",
        "chat/a",
        "to b",
        {"route": "chat", "from": "a", "to": "b"},
        at=now - 3600,
    )
    state.close()
    assert main(["providers", "--plan", str(plan), "--json", "--window", "1d"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["ready"] is True
    measured = {p["vendor"]: p["measured"] for p in doc["providers"]}
    assert measured["openai"] == pytest.approx(100 * (1 - 360 / 86400), abs=1e-3)
    assert measured["anthropic"] is None  # no event: not measured, never 100%
    assert main(["providers", "--plan", str(plan), "--window", "soon"]) == 2

    # the secondary's vendor announces an outage on its status feed (the gateway's event):
    # not ready while it lasts; an unreadable feed afterwards changes nothing
    state = StateStore(tmp_path / "state.db")
    data = {"vendor": "anthropic", "level": "major", "description": "Partial System Outage"}
    state.record_event("gateway.status_feed_outage", "anthropic", "down", data, at=now - 60)
    state.record_event("gateway.status_feed_unreachable", "anthropic", "?", data, at=now - 30)
    state.close()
    assert main(["providers", "--plan", str(plan), "--json", "--window", "1d"]) == 1
    doc = json.loads(capsys.readouterr().out)
    [ready] = doc["readiness"]
    assert (ready["feed_clear"], ready["ready"]) == (False, False)
    feed = next(p for p in doc["providers"] if p["vendor"] == "anthropic")["status_feed"]
    assert (feed["state"], feed["level"]) == ("outage", "major")
    state = StateStore(tmp_path / "state.db")
    state.record_event("gateway.status_feed_clear", "anthropic", "up", data, at=now - 10)
    state.close()
    assert main(["providers", "--plan", str(plan), "--window", "1d"]) == 0
    assert "quality not evaluated" in capsys.readouterr().out
    # the eval gate: a run through the route that only b served, failed; then one passed
    state = StateStore(tmp_path / "state.db")
    run = {"route": "chat", "served_by": ["b"], "passed": False}
    state.record_event("eval.run", "golden", "failed", run, at=now - 9)
    state.close()
    assert main(["providers", "--plan", str(plan), "--json", "--window", "1d"]) == 1
    [ready] = json.loads(capsys.readouterr().out)["readiness"]
    assert (ready["eval_gate"], ready["ready"]) == ("failed", False)
    state = StateStore(tmp_path / "state.db")
    state.record_event("eval.run", "golden", "ok", {"target": "b", "passed": True}, at=now - 5)
    state.close()
    assert main(["providers", "--plan", str(plan), "--json", "--window", "1d"]) == 0
    [ready] = json.loads(capsys.readouterr().out)["readiness"]
    assert ready["eval_gate"] == "passed"


def test_egress_is_measured_from_the_bytes_a_copy_sent(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from drkit.state.store import StateStore

    plan = _plan(tmp_path)
    data = yaml.safe_load(plan.read_text())
    data["repositories"]["replicas"][0]["password_env"] = "DRKIT_PASSWORD"
    plan.write_text(yaml.safe_dump(data, sort_keys=False))
    assert main(["repo", "init", "--plan", str(plan)]) == 0
    assert main(["backup", "--plan", str(plan)]) == 0
    capsys.readouterr()
    assert main(["copy", "--to", "far", "--init", "--plan", str(plan), "--json"]) == 0
    copied = json.loads(capsys.readouterr().out)
    # stored bytes: compressed and encrypted, less than the plaintext of the text files
    assert 0 < copied["stored_bytes"] < copied["bytes_copied"]
    state = StateStore(tmp_path / "state.db")
    [event] = state.events(kind="repository.copied")
    state.close()
    assert event.component == "far"
    assert event.data["stored_bytes"] == copied["stored_bytes"]
    assert (event.data["region"], event.data["from"]) == ("us", "primary")
    assert sum(copied["stored_by_component"].values()) == copied["stored_bytes"]
    assert event.data["components"] == copied["stored_by_component"]
    doc = _cost(plan, capsys)
    # what the copy sent of train's snapshots, not what the primary grew by; `drkit copy`
    # also sent notes', which the plan does not replicate there (not priced as DR)
    [egress] = _lines(doc, "egress")
    assert egress["component"] == "train"  # the only component that names the far replica
    assert egress["source"] == "measured"
    assert "repository.copied events" in egress["basis"]
    train_sent = copied["stored_by_component"]["train"]
    assert 0 < train_sent < copied["stored_bytes"]
    assert egress["monthly"] == pytest.approx(train_sent / 1e9 * 10.0)
    # the replica now measured too: its storage lines come from its own index
    storage = {(x["component"], x["region"]): x for x in _lines(doc, "storage")}
    assert storage["train", "us"]["source"] == "measured", storage["train", "us"]["basis"]


def test_a_negative_price_is_the_plan_file_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = _plan(tmp_path, egress_per_gb=-0.5)
    capsys.readouterr()
    assert main(["cost", "--plan", str(plan)]) == 2
    err = capsys.readouterr().err
    assert f"{plan}:" in err
    assert "cost.egress_per_gb" in err
    assert "Traceback" not in err
