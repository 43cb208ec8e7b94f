"""drkit standby sync/verify/promote and drkit rpo, through main(), with a plan."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from tests.connectors.vectorstore.data import as_dict, config, records

from drkit.cli.main import main
from drkit.connectors.vectorstore.base import Metric
from drkit.connectors.vectorstore.registry import open_vector_store
from drkit.plan.loader import load_plan
from drkit.state.store import StateStore


@pytest.fixture
def plan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    lance = f"lancedb://{tmp_path / 'lance'}"
    with open_vector_store(lance) as store:
        cfg = config("docs", metric=Metric.L2)
        store.create(cfg)
        store.import_batches("docs", [records(cfg, 50, flat=True, seed=3)])
    doc = {
        "version": 1,
        "name": "standby-test",
        "tiers": {"critical": {"rto": "5m", "rpo": "15m"}},
        "repositories": {
            "primary": {"name": "primary", "url": (tmp_path / "repo").as_uri(), "region": "eu-west"}
        },
        "vector_stores": [
            {
                "name": "kb",
                "tier": "critical",
                "engine": lance,
                "collections": ["docs"],
                "standby": {
                    "engine": f"qdrant+local://{tmp_path / 'qdrant'}",
                    "region": "eu-central",
                    "batch_size": 20,
                },
            }
        ],
    }
    path = tmp_path / "drkit.yaml"
    path.write_text(yaml.safe_dump(doc))
    monkeypatch.setenv("DRKIT_PASSWORD", "cli password")
    monkeypatch.setenv("DRKIT_KDF", "fast")
    monkeypatch.setenv("DRKIT_STATE", str(tmp_path / "state.db"))
    monkeypatch.delenv("DRKIT_REPO", raising=False)
    monkeypatch.chdir(tmp_path)
    return path


def run(capsys: pytest.CaptureFixture[str], argv: list[str], code: int = 0) -> dict:  # type: ignore[type-arg]
    capsys.readouterr()
    assert main([*argv, "--json"]) == code
    out = capsys.readouterr().out
    return json.loads(out) if out.strip() else {}


def test_sync_verify_rpo_promote(
    plan: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    synced = run(capsys, ["standby", "sync", "kb"])
    assert synced["schema_version"]
    assert synced["collections"][0]["upserted"] == 50
    assert synced["lag_s"] is not None

    again = run(capsys, ["standby", "sync", "kb"])
    assert again["collections"][0]["upserted"] == 0
    assert again["collections"][0]["unchanged"] == 50

    checked = run(capsys, ["standby", "verify", "kb"])
    assert checked["checks"][0]["ok"] is True
    assert checked["checks"][0]["behind"] == 0

    rpo = run(capsys, ["rpo"], code=1)  # no snapshot in the repository: exceeded there
    rows = rpo if isinstance(rpo, list) else rpo.get("items", rpo)
    standby = [r for r in rows if r["repository"] == "standby:qdrant+local"]
    assert len(standby) == 1
    assert standby[0]["region"] == "eu-central"
    assert standby[0]["measured_s"] is not None
    assert standby[0]["exceeded"] is False

    out = tmp_path / "promoted.yaml"
    promo = run(capsys, ["standby", "promote", "kb", "--plan-out", str(out)])
    assert promo["ok"] is True
    promoted = load_plan(out)
    kb = promoted.vector_stores[0]
    assert kb.engine.startswith("qdrant+local://")
    assert kb.region == "eu-central"
    assert kb.standby is not None
    assert kb.standby.engine.startswith("lancedb://")
    assert kb.standby.region == "eu-west"
    with open_vector_store(kb.engine) as q, open_vector_store(kb.standby.engine) as lance:
        assert as_dict(q.export("docs")) == as_dict(lance.export("docs"))
    # sync stopped: the old pair no longer syncs
    run(capsys, ["standby", "sync", "kb"], code=2)
    kinds = [e.kind for e in StateStore(tmp_path / "state.db").events(kind="standby.")]
    assert kinds == [
        "standby.synced",
        "standby.synced",
        "standby.verified",
        "standby.verified",
        "standby.promoted",
    ]


def test_bad_input(plan: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    err = run(capsys, ["standby", "sync", "nope"], code=2)
    assert "no vector store 'nope'" in json.dumps(err)
    run(capsys, ["standby", "verify", "kb"], code=2)  # never synced: nothing checked
    (tmp_path / "exists.yaml").write_text("x")
    run(capsys, ["standby", "promote", "kb", "--plan-out", str(tmp_path / "exists.yaml")], code=2)


def test_agent_runs_a_standby_job(plan: Path) -> None:
    from drkit.agent.jobs import plan_jobs

    jobs = {j.id: j for j in plan_jobs(load_plan(plan), plan)}
    job = jobs["standby:kb"]
    assert job.kind == "standby"
    assert job.schedule.every == 60.0  # type: ignore[union-attr]
    assert job.run().startswith("50 upserted, 0 deleted on qdrant+local://")
    assert job.run().startswith("0 upserted, 0 deleted")
