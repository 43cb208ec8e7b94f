"""``testing.scheduled_evals``: the agent sends the eval set through the route of a real
gateway (uvicorn, in front of a provider simulator), stores each run in eval history, and
fails the job when a quality fault (HTTP 200, wrong answers) makes a run regress against the
last passing one or fall under the floor."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.agent.conftest import write_plan
from tests.servers import uvicorn_in_thread

from drkit.agent.runner import agent_status
from drkit.cli.main import main
from drkit.connectors.llm.simulator import ProviderSimulator
from drkit.gateway.config import from_plan
from drkit.gateway.server import uvicorn_config
from drkit.plan.loader import load_plan

KEY = "sk-scheduled-eval-sim"
JOB = "eval:assistant:golden"


def _eval_set(path: Path, n: int = 20) -> None:
    lines = [
        {
            "id": f"q{i}",
            "prompt": f"capital word{i}" if i % 2 else f"plain word{i}",
            "expected": f"word{i}",
            "scorer": "contains",
        }
        for i in range(n)
    ]
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))


def _plan(tmp_path: Path, sim_url: str) -> Path:
    plan = write_plan(
        tmp_path,
        tiers={
            "critical": {"rto": "5m", "rpo": "1h"},
            "standard": {"rto": "1h", "rpo": "1h"},
        },
        datasets=[],
        serving={
            "auth": {"client_keys_env": "SCHED_EVAL_KEYS"},
            "gateway": {"port": 9},  # replaced by the running gateway's port
            "routes": [
                {
                    "name": "assistant",
                    "tier": "critical",
                    "quality": {"floor": 0.4},
                    "targets": [
                        {
                            "name": "sim",
                            "provider": "openai",
                            "region": "eu",
                            "model": "m1",
                            "base_url": sim_url,
                            "api_key_env": "SCHED_EVAL_SIM_KEY",
                        }
                    ],
                }
            ],
        },
        eval_results=[{"name": "eval-history", "path": "./results", "tier": "critical"}],
        testing={
            "scheduled_evals": [
                {"eval_set": "golden/golden.jsonl", "route": "assistant", "every": "1s"}
            ]
        },
    )
    _eval_set(tmp_path / "golden" / "golden.jsonl")
    return plan


@pytest.fixture
def sim(monkeypatch: pytest.MonkeyPatch) -> Iterator[ProviderSimulator]:
    monkeypatch.setenv("SCHED_EVAL_SIM_KEY", KEY)
    monkeypatch.setenv("SCHED_EVAL_KEYS", "client-a,client-b")
    s = ProviderSimulator("openai", seed=5, mode="echo", api_key=KEY)
    s.start()
    try:
        yield s
    finally:
        s.stop()


def _agent_once(plan: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any]]:
    """``agent run --once`` until the scheduled eval ran (its 1s interval: generous deadline)."""
    deadline = time.monotonic() + 60
    while True:
        capsys.readouterr()
        code = main(["agent", "run", "--once", "--plan", str(plan), "--json"])
        report = json.loads(capsys.readouterr().out)
        runs = [r for r in report["runs"] if r["job"] == JOB]
        if runs:
            return code, runs[0]
        if time.monotonic() > deadline:
            pytest.fail(f"{JOB} did not run within 60s", pytrace=False)
        time.sleep(0.3)


def _history(plan: Path, capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    capsys.readouterr()
    assert main(["eval", "history", "--plan", str(plan), "--json"]) == 0
    runs: list[dict[str, Any]] = json.loads(capsys.readouterr().out)["runs"]
    return runs


@pytest.mark.usefixtures("env")
def test_the_agent_runs_a_scheduled_eval_and_fails_on_a_quality_fault(
    tmp_path: Path, sim: ProviderSimulator, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = _plan(tmp_path, sim.base_url)
    config = uvicorn_config(from_plan(load_plan(plan)))
    with uvicorn_in_thread(config, what="the gateway") as url:
        data = yaml.safe_load(plan.read_text())
        data["serving"]["gateway"]["port"] = int(url.rsplit(":", 1)[1])
        plan.write_text(yaml.safe_dump(data, sort_keys=False))
        assert main(["repo", "init", "--plan", str(plan)]) == 0

        code, run = _agent_once(plan, capsys)
        assert (code, run["status"]) == (0, "ok"), run
        assert "mean score 1.000 over 20 (floor 0.400)" in run["summary"]
        assert "no earlier passing run" in run["summary"]
        (first,) = _history(plan, capsys)
        assert (first["route"], first["passed"], first["n"]) == ("assistant", True, 20)
        assert first["served_by"] == ["sim"]
        assert first["history_component"] == "eval-history"
        assert Path(first["path"]).parent == tmp_path / "results"

        code, run = _agent_once(plan, capsys)
        assert (code, run["status"]) == (0, "ok"), run
        assert "no significant change against the last passing run" in run["summary"]

        # wrong answers on the "capital" half: 0.5 is above the floor, but the paired
        # test of the 10 losses against the last passing run calls it a regression
        sim.set_faults({"kind": "wrong_answer", "topic": "capital"})
        code, run = _agent_once(plan, capsys)
        assert (code, run["status"]) == (1, "failed"), run
        assert "regressed: 0.500 vs 1.000" in run["error"]
        assert "mcnemar" in run["error"].lower()

        # every answer wrong: under the floor
        sim.set_faults({"kind": "wrong_answer"})
        code, run = _agent_once(plan, capsys)
        assert (code, run["status"]) == (1, "failed"), run
        assert "mean score 0.000 is below the pass threshold 0.400" in run["error"]
        assert "(serving.routes.assistant.quality)" in run["error"]

    runs = _history(plan, capsys)
    assert [(r["mean_score"], r["passed"]) for r in runs] == [
        (1.0, True),
        (1.0, True),
        (0.5, True),  # passed its floor; the job failed on the regression
        (0.0, False),
    ]
    assert runs[-1]["run_id"] in run["error"]

    status = {j["job"]: j for j in agent_status(plan)}
    assert status[JOB]["kind"] == "eval"
    assert status[JOB]["every"] == "1s"
    assert status[JOB]["last"]["status"] == "failed"
    later = {j["job"]: j for j in agent_status(plan, now=time.time() + 3600)}
    assert later[JOB]["overdue"] is True  # like any other job of the agent


@pytest.mark.usefixtures("env")
def test_a_missing_or_too_frequent_scheduled_eval_is_bad_input(
    tmp_path: Path, sim: ProviderSimulator, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = _plan(tmp_path, sim.base_url)
    (tmp_path / "golden" / "golden.jsonl").unlink()
    capsys.readouterr()
    assert main(["agent", "run", "--once", "--plan", str(plan)]) == 2
    err = capsys.readouterr().err
    assert "testing.scheduled_evals[0].eval_set: no eval set file" in err
    (tmp_path / "golden" / "golden.jsonl").write_text('{"id": "a", "prompt": "x"}\n')
    assert main(["agent", "run", "--once", "--plan", str(plan)]) == 2
    assert "golden.jsonl:1: expected" in capsys.readouterr().err
    _eval_set(tmp_path / "golden" / "golden.jsonl")
    plan.write_text(plan.read_text().replace("every: 1s", "every: 100ms"))
    assert main(["agent", "run", "--once", "--plan", str(plan)]) == 2
    assert "below the agent's minimum" in capsys.readouterr().err
