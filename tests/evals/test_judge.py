"""The llm_judge scorer: a route of the real gateway grades each answer (simulators behind)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from tests.servers import uvicorn_in_thread

from drkit.cli.main import main
from drkit.connectors.llm.simulator import ProviderSimulator
from drkit.errors import PlanError
from drkit.evals import load_eval_set
from drkit.gateway.config import from_mapping
from drkit.gateway.server import uvicorn_config


def _target(name: str, sim: ProviderSimulator) -> dict[str, str]:
    return {
        "name": name,
        "provider": "openai",
        "region": "eu-west",
        "model": "m",
        "base_url": sim.base_url,
        "api_key_env": "JUDGE_SIM_KEY",
    }


@pytest.fixture
def gateway(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, ProviderSimulator]]:
    monkeypatch.setenv("JUDGE_SIM_KEY", "sk-judge-sim")
    answers = ProviderSimulator("openai", seed=1, mode="echo", api_key="sk-judge-sim")
    judge = ProviderSimulator("openai", seed=2, mode="echo", api_key="sk-judge-sim")
    answers.start()
    judge.start()
    serving = {
        "auth": {"disabled": True},
        "routes": [
            {"name": "assistant", "tier": "t", "targets": [_target("answers", answers)]},
            {"name": "judge", "tier": "t", "targets": [_target("grader", judge)]},
        ],
    }
    try:
        with uvicorn_in_thread(uvicorn_config(from_mapping(serving)), what="gateway") as url:
            yield url, judge
    finally:
        answers.stop()
        judge.stop()


def test_a_judge_route_grades_the_answers(
    gateway: tuple[str, ProviderSimulator],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, judge = gateway
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DRKIT_STATE", str(tmp_path / "state.db"))
    rows = [
        {
            "id": f"q{i}",
            # the echo simulators: the answer is the prompt, the judge's verdict the answer
            "prompt": ("PASS" if i < 3 else "FAIL") + f" answer {i}",
            "expected": f"reference {i}",
            "scorer": "llm_judge",
            "params": {"route": "judge", "criteria": "be strict"},
        }
        for i in range(4)
    ]
    es = tmp_path / "judged.jsonl"
    es.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    run = ["eval", "run", str(es), "--gateway", url, "--route", "assistant", "--json"]
    capsys.readouterr()
    # one at a time: the judge's last request is then the last example's (q3)
    assert main([*run, "--pass-threshold", "0.7", "--concurrency", "1"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert (s["mean_score"], s["errors"], s["passed"]) == (0.75, 0, True)
    asked = judge.last_request
    assert asked is not None
    system = asked["messages"][0]["content"]
    assert "Reference answer:\nreference 3" in system
    assert "be strict" in system
    assert asked["messages"][-1]["content"] == "FAIL answer 3"

    judge.set_faults({"kind": "wrong_answer"})  # the judge rambles: no verdict is no score
    assert main(run) == 1
    s = json.loads(capsys.readouterr().out)
    assert s["errors"] == 4
    errors = {r["error"] for r in pq.read_table(s["path"]).to_pylist()}
    assert errors == {"judge: no PASS/FAIL verdict"}


def test_judge_needs_a_route_and_no_canary_uses_it(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "prompt": "p", "expected": "x", "scorer": "llm_judge"}\n')
    with pytest.raises(
        PlanError, match=r"bad.jsonl:1: params: scorer llm_judge needs params.route"
    ):
        load_eval_set(bad)
    from drkit.plan.loader import load_plan
    from drkit.workspace.canary import canary_from_plan

    bad.write_text(
        '{"id": "a", "prompt": "p", "expected": "x", "scorer": "llm_judge",'
        ' "params": {"route": "judge"}}\n'
    )
    plan = tmp_path / "drkit.yaml"
    plan.write_text(
        f"""version: 1
name: judge-canary
tiers: {{t: {{rto: 1h, rpo: 1h, quality: {{floor: 0.5}}}}}}
repositories: {{primary: {{name: p, url: "file://{tmp_path}/r", region: eu}}}}
serving:
  routes:
    - name: assistant
      tier: t
      canary: {{eval_set: bad.jsonl}}
      targets: [{{name: a, provider: openai, region: eu, model: m,
                  base_url: "http://127.0.0.1:1/v1"}}]
"""
    )
    with pytest.raises(PlanError, match="canary set bad scores 'a' with llm_judge"):
        canary_from_plan(load_plan(plan))
