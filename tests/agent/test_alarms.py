"""The agent's alarms: ``rpo.breach`` and ``job.overdue`` events in drkit's state."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from tests.agent.conftest import write_plan

from drkit.agent.runner import AgentOptions, run_agent
from drkit.cli.main import main
from drkit.state.store import StateStore


@pytest.mark.usefixtures("env")
def test_breach_and_overdue_are_recorded_once(tmp_path: Path) -> None:
    plan = write_plan(tmp_path)
    assert main(["repo", "init", "--plan", str(plan)]) == 0
    shutil.rmtree(tmp_path / "train")  # backup:train fails: the copy waiting on it is late
    # slack 1.5 s: backup:golden starts on time even on a loaded machine; copy:replica,
    # waiting on the failing backup, is past it well before the 4 s are up
    run_agent(plan, AgentOptions(max_runtime=4.0, rpo_every=0.3, overdue_slack=1.5, grace=5))
    state = StateStore(tmp_path / "state" / "state.db")
    breaches = [(e.component, e.data["repository"]) for e in state.events(kind="rpo.breach")]
    # nothing was backed up at the first measurement: every region breached, once each
    # while it stays breached (train never gets a snapshot)
    assert ("train", "primary") in breaches
    assert ("train", "replica") in breaches
    assert breaches.count(("train", "primary")) == 1
    overdue = [e.component for e in state.events(kind="job.overdue")]
    assert "copy:replica" in overdue
    assert overdue.count("copy:replica") == 1  # one missed slot, one event
    assert "backup:golden" not in overdue  # ran on time
    state.close()
