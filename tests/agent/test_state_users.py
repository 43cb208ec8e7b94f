"""Every user of drkit's state opens the plan's state *location* (a ``postgresql://``
state too), never the SQLite path beside the plan: the lineage rules of ``plan check``,
the eval history index and the drills' stack, on a real PostgreSQL state."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.agent.conftest import write_plan
from tests.models.test_lineage_cli import _registered
from tests.models.test_model_cli import _run, starter

from drkit.state.store import StateStore
from drkit.workspace.eval_history import eval_place
from drkit.workspace.workspace import Workspace

__all__ = ["starter"]


def test_plan_check_lineage_rules_read_a_postgresql_state(
    starter: Path,
    pg_state_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DRKIT_STATE", pg_state_url)
    _registered(starter.parent, capsys)  # the registry's events: in PostgreSQL only
    assert not (starter.parent / ".drkit" / "state.db").exists()
    text = starter.read_text()
    starter.write_text(text.replace("model: gpt-4.1", 'model: "@assistant:canary"', 1))
    check = _run(capsys, ["plan", "check"], code=1)
    [dr310] = [v for v in check["violations"] if v["rule"] == "DR310"]
    assert "@assistant:canary does not resolve" in dr310["message"]


def test_eval_history_and_drills_use_the_state_location(
    tmp_path: Path, pg_state_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DRKIT_STATE", pg_state_url)
    # without a plan file: the PostgreSQL state, the history in .drkit/evals
    place = eval_place(tmp_path / "drkit.yaml")
    assert place.state == pg_state_url
    assert place.history == tmp_path / ".drkit" / "evals"
    place.record("eval.run", "golden", "eval golden: mean score 1.000", {"run_id": "r-1"})
    state = StateStore(pg_state_url)
    try:
        assert [e.data["run_id"] for e in state.events(kind="eval.run")] == ["r-1"]
    finally:
        state.close()

    plan = write_plan(tmp_path)
    assert eval_place(plan).state == pg_state_url
    ws = Workspace.load(plan)
    assert ws.state_location == pg_state_url
    assert ws.stack().state_location == pg_state_url
    assert ws.state_path.name == "state.db"  # where its files go (journals, scratch)
