"""Ctrl-C or SIGTERM in a real `drkit drill run` process: rollback runs, the journal is
kept, exit 130 (143 for SIGTERM)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import WritePlan, serving_plan, target, validate_journal


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_during_the_fault_rolls_back(write_plan: WritePlan, sig: signal.Signals) -> None:
    data = serving_plan([target("only-eu", "openai", "eu-west")])
    # the black hole holds a request for a minute: the interrupt lands inside it
    data["serving"]["gateway"] = {"health": {"eject_after": 50}}
    data["serving"]["routes"][0]["deadlines"] = {"first_token": "60s", "total": "120s"}
    plan = write_plan(data)
    proc = subprocess.Popen(
        [sys.executable, "-m", "drkit", "drill", "run", "provider-outage", "--plan", str(plan)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # a suite started in the background of a shell inherits SIGINT ignored, and Python
        # keeps an ignored SIGINT ignored: the drill under test must start with the default
        preexec_fn=_default_sigint,
    )
    assert proc.stderr is not None
    try:
        for line in proc.stderr:  # step lines arrive as each step ends
            if "answers 503" in line:
                break
        else:
            raise AssertionError("the drill ended before its fault phase")
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
        assert "INTERRUPTED" in out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == (130 if sig == signal.SIGINT else 143), err
    assert "interrupted; rollback ran" in err
    [journal_path] = (plan.parent / ".drkit" / "drills").glob("provider-outage-*.json")
    journal = validate_journal(Path(journal_path))
    assert journal["verdict"] == "interrupted"
    rollback = [s for s in journal["steps"] if s["phase"] == "rollback"]
    assert [s["name"] for s in rollback] == [
        "clear the simulator faults",
        "traffic returns to the primary (measured)",
        "stop the rehearsal",
        "journal the gateway's events",
    ]
    assert all(s["status"] == "ok" for s in rollback)
    assert json.loads(json.dumps(journal))["reasons"] == ["interrupted by the operator"]
