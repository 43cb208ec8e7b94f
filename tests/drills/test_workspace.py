from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from drkit.errors import SecretMissing, UsageError
from drkit.workspace import Workspace
from drkit.workspace.demo import build_stack
from drkit.workspace.demo_sizes import SIZES

from .conftest import WritePlan, serving_plan


def test_workspace_opens_what_the_plan_names(tmp_path: Path) -> None:
    plan = build_stack(tmp_path / "stack", seed=1, size="small")
    ws = Workspace.load(plan)
    assert ws.state_path == plan.parent / ".drkit" / "state.db"
    assert ws.journal_dir == plan.parent / ".drkit" / "drills"
    config = ws.gateway_config()
    assert [t.name for t in config.routes[0].targets] == ["sim-eu", "sim-us"]
    assert config.events_path == str(plan.parent / ".drkit" / "gateway-events.jsonl")
    store = ws.vector_store("kb")
    try:
        assert store.count("docs") == SIZES["small"][0]
    finally:
        store.close()
    with pytest.raises(UsageError, match="no vector store 'nope'"):
        ws.vector_store("nope")
    primary = ws.plan.repositories.primary
    secret = (plan.parent / "secrets" / "primary.password").read_text().strip()
    assert ws.password(primary) == secret
    ws.close()


def test_password_sources_and_a_missing_one(
    write_plan: WritePlan, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = serving_plan()
    data["repositories"]["replicas"] = [
        {"name": "r", "url": "file:///tmp/x", "region": "us-east", "password_file": "pw.txt"}
    ]
    plan = write_plan(data)
    (plan.parent / "pw.txt").write_text("from-a-file\n")
    ws = Workspace.load(plan)
    assert ws.password(ws.plan.repository("r")) == "from-a-file"  # relative to the plan
    monkeypatch.setenv("DRKIT_TEST_UNUSED_PW", "from-env")
    assert ws.password(ws.plan.repositories.primary) == "from-env"
    monkeypatch.delenv("DRKIT_TEST_UNUSED_PW")
    with pytest.raises(SecretMissing, match="DRKIT_TEST_UNUSED_PW is not set") as info:
        ws.password(ws.plan.repositories.primary)
    assert info.value.exit_code == 2


def test_drkit_state_env_moves_the_state(
    write_plan: WritePlan, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = write_plan(yaml.safe_load(yaml.safe_dump(serving_plan())))
    monkeypatch.setenv("DRKIT_STATE", str(tmp_path / "elsewhere" / "s.db"))
    ws = Workspace.load(plan)
    assert ws.journal_dir == tmp_path / "elsewhere" / "drills"
    assert ws.drill_history() == []
    assert not (tmp_path / "elsewhere").exists()  # reading history creates nothing
