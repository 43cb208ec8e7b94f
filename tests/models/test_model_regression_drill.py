"""The model-regression drill end to end: a real gateway following ``@assistant:champion``
over simulators, the eval gate detecting the regressed version, ``model rollback``
restoring the version that passes, and the real registry left as it was."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.drills.conftest import FAST_DEADLINES, FAST_GATEWAY, validate_journal

from drkit.cli.main import main
from drkit.lineage.registry import Registry
from drkit.state.store import StateStore


def _plan(tmp_path: Path) -> Path:
    data: dict[str, Any] = {
        "version": 1,
        "name": "model-drill",
        "tiers": {"critical": {"rto": "5m", "rpo": "15m"}},
        "repositories": {
            "primary": {
                "name": "primary",
                "url": f"file://{tmp_path}/repo",
                "region": "eu-west",
                "password_env": "DRKIT_TEST_UNUSED_PW",
            }
        },
        "serving": {
            "auth": {"disabled": True},
            "gateway": FAST_GATEWAY,
            "routes": [
                {
                    "name": "assistant",
                    "tier": "critical",
                    "deadlines": FAST_DEADLINES,
                    "targets": [
                        {
                            "name": "sim-eu",
                            "provider": "openai",
                            "region": "eu-west",
                            "model": "@assistant:champion",
                            "base_url": "http://127.0.0.1:9/v1",
                        }
                    ],
                }
            ],
        },
    }
    path = tmp_path / "drkit.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture
def plan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DRKIT_STATE", str(tmp_path / "state" / "state.db"))
    return _plan(tmp_path)


def _registry(tmp_path: Path, alias_at: str) -> list[Any]:
    state = StateStore(tmp_path / "state" / "state.db")
    reg = Registry(state)
    reg.register("assistant", "1", upstream={"openai": "sim-small"})
    reg.register("assistant", "2", upstream={"openai": "sim-large"})
    reg.set_alias("assistant", "champion", "1", reason="first")
    if alias_at == "2":
        reg.set_alias("assistant", "champion", "2", reason="promoted")
    ledger = [(c.to_version, c.event_id) for c in reg.history("assistant")]
    state.close()
    return ledger


def _run(plan: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    capsys.readouterr()
    code = main(["drill", "run", "model-regression", "--plan", str(plan), "--json"])
    out = capsys.readouterr()
    journal: dict[str, Any] = json.loads(out.out)
    assert code == 0, (journal["verdict"], journal["reasons"])
    validate_journal(Path(journal["journal_path"]))
    return journal


def _data(journal: dict[str, Any], step: str) -> dict[str, Any]:
    found: dict[str, Any] = next(s["data"] for s in journal["steps"] if s["name"].startswith(step))
    return found


def test_the_drill_breaks_the_next_version_and_rolls_back(
    plan: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ledger = _registry(tmp_path, alias_at="1")
    journal = _run(plan, capsys)
    assert journal["verdict"] == "pass"
    setup = _data(journal, "copy assistant")
    assert setup["serving"] == "assistant@1 (sim-small)"
    assert setup["candidate"] == "assistant@2 (sim-large)"  # the next registered version
    gate = _data(journal, "the eval gate flags")["gate"]
    assert gate["passed"] is False
    assert gate["candidate"] == "2"
    assert gate["baseline"] == "1"
    assert "regression" in gate["reason"]
    back = _data(journal, "model rollback")
    assert back["rolled_back_to"] == "1"
    assert journal["detection"]["measured_s"] > 0
    assert journal["rto"]["measured_s"] >= journal["detection"]["measured_s"]
    assert journal["rto"]["met"] is True
    m = journal["metrics"]
    assert m["time_to_quality_recovery_s"] >= journal["rto"]["measured_s"]
    assert m["quality_delta"] == 0.0
    history = [
        (h["from"], h["to"], h["action"]) for h in _data(journal, "journal")["alias_history"]
    ]
    assert history[-2:] == [("1", "2", "set"), ("2", "1", "rollback")]
    # the real registry: untouched (its ledger and aliases as before), sandbox gone
    state = StateStore(tmp_path / "state" / "state.db")
    reg = Registry(state)
    assert [(c.to_version, c.event_id) for c in reg.history("assistant")] == ledger
    assert [v.version for v in reg.versions("assistant")] == ["1", "2"]
    assert not list(state.events(kind="eval.run"))
    # what it rehearsed is on the version's lineage (an event, not a registry change)
    [drilled] = [e.data for e in state.events(kind="model.drill")]
    state.close()
    assert drilled["candidate"] == "2"
    assert drilled["rolled_back_to"] == "1"
    assert drilled["rto_s"] == pytest.approx(journal["rto"]["measured_s"], abs=0.01)
    capsys.readouterr()
    assert main(["lineage", "show", "assistant@2", "--plan", str(plan), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert [d["rolled_back_to"] for d in shown["drills"]] == ["1"]
    assert not list((tmp_path / "state" / "scratch").glob("model-regression-*"))


def test_with_the_newest_version_serving_a_drill_candidate_is_broken(
    plan: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _registry(tmp_path, alias_at="2")
    journal = _run(plan, capsys)
    assert journal["verdict"] == "pass"
    assert (
        _data(journal, "copy assistant")["candidate"] == "assistant@2+drill (sim-large+regressed)"
    )
    assert _data(journal, "model rollback")["rolled_back_to"] == "2"
    state = StateStore(tmp_path / "state" / "state.db")
    assert [v.version for v in Registry(state).versions("assistant")] == ["1", "2"]
    state.close()


def test_without_a_registry_the_drill_aborts_saying_what_to_register(
    plan: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    code = main(["drill", "run", "model-regression", "--plan", str(plan), "--json"])
    journal = json.loads(capsys.readouterr().out)
    assert code == 1
    assert journal["verdict"] == "aborted"
    assert "drkit model register assistant" in journal["reasons"][0]
