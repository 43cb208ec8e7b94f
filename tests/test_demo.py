"""`drkit demo` end to end (small size) and scripts/demo.sh's building blocks."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from drkit.cli.main import main
from drkit.connectors.vectorstore.registry import open_vector_store
from drkit.drills.data import fingerprint
from drkit.replication.vectors import collection_fingerprint
from drkit.workspace.demo import build_stack


def test_demo_end_to_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DRKIT_KDF", "fast")
    monkeypatch.delenv("DRKIT_STATE", raising=False)
    work = tmp_path / "demo"
    assert main(["demo", "--dir", str(work), "--size", "small", "--seed", "4", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["passed"] is True
    assert [s["step"] for s in out["steps"]] == [
        "build stack",
        "init repositories",
        "backup",
        "register models",
        "copy to replica",
        "verify",
        "writes after the backup",
        "game day",
    ]
    cards = {r["scenario"]: r for r in out["scorecard"]}
    assert set(cards) == {"provider-outage", "region-outage", "data-corruption", "model-regression"}
    assert all(c["verdict"] == "pass" for c in cards.values())
    corruption = cards["data-corruption"]["metrics"]
    assert corruption["file_writes_lost"] == 3  # the dataset files written after the backup
    assert corruption["record_writes_lost"] == 6  # 3 new and 3 changed kb records
    assert corruption["records_deleted"] >= 1
    assert corruption["vectors_overwritten"] >= 1
    assert cards["region-outage"]["metrics"]["collections_restored"] == 1
    backup = next(s for s in out["steps"] if s["step"] == "backup")
    assert "kb/docs@" in backup["snapshots"]
    assert cards["provider-outage"]["metrics"]["client_visible_errors"] == 0
    # the model-regression drill: detected by the gate, rolled back, quality measured
    regression = cards["model-regression"]
    assert regression["metrics"]["time_to_quality_recovery_s"] > 0
    report = Path(out["report"])
    assert report == work / "gameday-report.html"
    assert "<svg" in report.read_text()
    assert "<h2>Cost per tier</h2>" in report.read_text()  # beside RTO/RPO (drkit cost)

    # passwords are generated into the work dir, private, and never printed
    for name in ("primary", "replica"):
        secret = work / "secrets" / f"{name}.password"
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600
        password = secret.read_text().strip()
        assert len(password) >= 32
        assert password not in json.dumps(out)
        for journal in (work / ".drkit" / "drills").glob("*.json"):
            assert password not in journal.read_text()

    # the plan it wrote passes the framework check, drills included
    assert main(["plan", "check", "--plan", str(work / "drkit.yaml"), "--json"]) == 0
    check = json.loads(capsys.readouterr().out)
    assert not [v for v in check["violations"] if v["severity"] == "error"]
    # every component, the vector store too, has a recorded restore test
    assert not [v for v in check["violations"] if v["rule"] == "DR592"]

    # `drkit cost` on the demo plan: per-tier cost from the sizes drkit measured, the
    # outage loss the failover buys down, what moving kb to standard saves and risks
    assert main(["cost", "--plan", str(work / "drkit.yaml"), "--json"]) == 0
    cost = json.loads(capsys.readouterr().out)
    storage = [x for x in cost["lines"] if x["category"] == "storage" and x["component"] == "kb"]
    assert storage
    assert all(x["source"] == "measured" for x in storage)
    critical = next(t for t in cost["tiers"] if t["tier"] == "critical")
    assert critical["outage_loss_bought_down_year"] > 0
    args = ["cost", "--plan", str(work / "drkit.yaml"), "--json", "--what-if", "kb=standard"]
    assert main(args) == 0
    what_if = json.loads(capsys.readouterr().out)
    assert what_if["monthly_delta"] < 0
    [kb] = what_if["objectives"]
    assert kb["after"]["offsite_copies"] == []
    assert "DR203" in {f["rule"] for f in what_if["new_findings"]}

    # a non-empty directory is refused: nothing is overwritten
    assert main(["demo", "--dir", str(work), "--size", "small"]) == 2
    assert "not empty" in capsys.readouterr().err


def test_demo_stack_is_deterministic_under_seed(tmp_path: Path) -> None:
    a = build_stack(tmp_path / "a", seed=9, size="small").parent
    b = build_stack(tmp_path / "b", seed=9, size="small").parent
    c = build_stack(tmp_path / "c", seed=10, size="small").parent
    for part in ("data/train", "evals/golden"):
        assert fingerprint(a / part) == fingerprint(b / part)
        assert fingerprint(a / part) != fingerprint(c / part)
    plan_a = (a / "drkit.yaml").read_text().replace(str(a), "DIR")
    plan_b = (b / "drkit.yaml").read_text().replace(str(b), "DIR")
    assert plan_a == plan_b
    assert os.listdir(a / "vectors")
    prints = []
    for root in (a, b, c):
        with open_vector_store(f"lancedb://{root / 'vectors'}") as store:
            prints.append(collection_fingerprint(store, "docs"))
    assert prints[0] == prints[1]
    assert prints[0] != prints[2]
