"""The gateway's quality canary, end to end: real uvicorn in front of two provider simulators,
official openai SDK clients, the primary switched to wrong answers (HTTP 200) and back."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from tests.servers import uvicorn_in_thread

from drkit.connectors.llm.simulator import ProviderSimulator
from drkit.errors import PlanError
from drkit.gateway.canary import _Share
from drkit.gateway.config import from_plan
from drkit.gateway.events import FanOutEventSink, MemoryEventSink, StateEventSink
from drkit.gateway.server import uvicorn_config
from drkit.plan.loader import load_plan
from drkit.state.store import StateStore
from drkit.status.states import PageComponent, Signal, State, current_states, replay
from drkit.workspace.canary import canary_from_plan

PLAN = """\
version: 1
name: canary-test
tiers:
  critical: {{rto: 5m, rpo: 1h, multi_region: true, quality: {{floor: 0.8}}}}
repositories:
  primary: {{name: primary, url: "file://{root}/repo", region: eu-west}}
serving:
  auth: {{disabled: true}}
  routes:
    - name: assistant
      tier: critical
      {canary}
      targets:
        - {{name: primary, provider: openai, region: eu-west, model: m1, base_url: "{a}",
            api_key_env: CANARY_SIM_KEY}}
        - {{name: secondary, provider: openai, region: us-east, model: m2, base_url: "{b}",
            api_key_env: CANARY_SIM_KEY}}
"""
CANARY = "canary: {eval_set: canary.jsonl, every: 0.25s, max_share: 0.8}"


def _plan(tmp_path: Path, a: str, b: str, canary: str = CANARY) -> Path:
    lines = [
        {"id": f"c{i}", "prompt": f"canary word{i}", "expected": f"word{i}", "scorer": "contains"}
        for i in range(3)
    ]
    (tmp_path / "canary.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    plan = tmp_path / "drkit.yaml"
    plan.write_text(PLAN.format(root=tmp_path, a=a, b=b, canary=canary))
    return plan


@pytest.fixture
def sims(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[ProviderSimulator, ProviderSimulator]]:
    monkeypatch.setenv("CANARY_SIM_KEY", "sk-canary-sim")
    a = ProviderSimulator("openai", seed=1, mode="echo", api_key="sk-canary-sim")
    b = ProviderSimulator("openai", seed=2, mode="echo", api_key="sk-canary-sim")
    a.start()
    b.start()
    try:
        yield a, b
    finally:
        a.stop()
        b.stop()


class Traffic:
    """Official-SDK clients asking the gateway all the time; every answer is recorded."""

    def __init__(self, base_url: str, clients: int = 2) -> None:
        self.base_url = base_url
        self.answers: list[tuple[float, int, str | None, str | None, str]] = []
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(i,)) for i in range(clients)]

    def _run(self, n: int) -> None:
        client = openai.OpenAI(base_url=self.base_url + "/v1", api_key="unused", max_retries=0)
        i = 0
        while not self.stop.is_set():
            i += 1
            try:
                raw = client.chat.completions.with_raw_response.create(
                    model="assistant", messages=[{"role": "user", "content": f"hello {n}-{i}"}]
                )
            except openai.APIError as exc:  # recorded: the test asserts there is none
                self.answers.append((time.monotonic(), -1, None, None, str(exc)))
                time.sleep(0.05)
                continue
            text = raw.parse().choices[0].message.content or ""
            self.answers.append(
                (
                    time.monotonic(),
                    raw.status_code,
                    raw.headers.get("x-drkit-target"),
                    raw.headers.get("x-drkit-failover-reason"),
                    text,
                )
            )

    def __enter__(self) -> Traffic:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=30)

    def since(self, t0: float) -> list[tuple[float, int, str | None, str | None, str]]:
        return [a for a in list(self.answers) if a[0] >= t0]


def _wait(what: str, cond: Any, timeout: float = 20.0) -> float:
    start = time.monotonic()
    while not cond():
        if time.monotonic() - start > timeout:
            pytest.fail(f"{what}: not within {timeout:g}s", pytrace=False)
        time.sleep(0.05)
    return time.monotonic()


def test_wrong_answering_primary_is_held_out_and_comes_back(
    tmp_path: Path, sims: tuple[ProviderSimulator, ProviderSimulator]
) -> None:
    a, b = sims
    plan = load_plan(_plan(tmp_path, a.base_url, b.base_url))
    state = StateStore(tmp_path / "state.db")
    memory = MemoryEventSink()
    sink = FanOutEventSink(memory, StateEventSink(state))
    canary = canary_from_plan(plan)
    assert canary is not None
    config = uvicorn_config(from_plan(plan), events=sink, canary=canary)
    with uvicorn_in_thread(config, what="the gateway") as url, Traffic(url) as traffic:
        _wait("a first canary round", lambda: canary.quality["primary"].rounds > 0)
        assert not canary.is_held("primary")
        t_fault = time.monotonic()
        a.set_faults({"kind": "wrong_answer"})
        _wait("quality_degraded", lambda: "quality_degraded" in memory.kinds())
        t_held = time.monotonic()
        # within two canary intervals (plus one round's requests on a loaded machine)
        assert t_held - t_fault < 2 * 0.25 + 2.0
        time.sleep(0.5)
        held = traffic.since(t_held + 0.05)
        assert held, "no client traffic while the primary was held"
        assert {s for _, s, *_ in held} == {200}
        assert {t for _, _, t, _, _ in held} == {"secondary"}
        assert all("primary:quality" in (r or "") for *_, r, _ in held)
        assert all(text.startswith("hello") for *_, text in held)  # right answers
        admin = httpx.get(url + "/admin/targets").json()
        quality = {q["target"]: q for q in admin["quality"]}
        assert quality["primary"]["state"] == "degraded_quality"
        assert quality["primary"]["score"] < 0.8
        assert quality["secondary"]["state"] == "ok"
        metrics = httpx.get(url + "/metrics").text
        assert 'drkit_gateway_quality_held{target="primary"} 1.0' in metrics

        a.set_faults()
        _wait("quality_recovered", lambda: "quality_recovered" in memory.kinds())
        t_back = time.monotonic()
        _wait(
            "traffic back on the primary",
            lambda: any(t == "primary" for _, _, t, _, _ in traffic.since(t_back)),
        )
    assert {s for _, s, *_ in traffic.answers} == {200}
    degraded = state.events(kind="gateway.quality_degraded")
    assert [(e.component, e.data["target"], e.data["reason"]) for e in degraded] == [
        ("assistant/primary", "primary", "quality")
    ]
    assert degraded[0].data["eval_set"] == "canary"
    assert len(state.events(kind="gateway.quality_recovered")) == 1
    # the status page reads the same events: degraded quality, then operational again
    signals = [Signal(e.at, e.kind, e.component, e.data, e.message) for e in state.events()]
    page = [PageComponent("Assistant", ("assistant",))]
    routes = {"assistant": ("primary", "secondary")}
    changes = replay(page, routes, signals, now=degraded[0].at + 0.001)
    assert current_states(changes)["Assistant"].state is State.DEGRADED_QUALITY
    changes = replay(page, routes, signals, now=time.time() + 1)
    assert current_states(changes)["Assistant"].state is not State.DEGRADED_QUALITY


def test_canary_share_never_exceeds_its_cap() -> None:
    share = _Share(window=10.0)
    assert not share.allows(0.0, 3, client_requests=0, share=0.1)  # no traffic: no canary
    assert not share.allows(0.0, 3, client_requests=20, share=0.1)  # 3 of 23 > 10%
    assert share.allows(0.0, 3, client_requests=27, share=0.1)  # 3 of 30
    share.spend(0.0, 3)
    assert not share.allows(1.0, 3, client_requests=27, share=0.1)  # 6 of 33
    assert share.allows(10.5, 3, client_requests=27, share=0.1)  # the first 3 left the window


def test_a_canary_needs_a_floor_and_a_valid_eval_set(tmp_path: Path) -> None:
    plan_file = _plan(tmp_path, "http://127.0.0.1:1/v1", "http://127.0.0.1:2/v1")
    plan_file.write_text(plan_file.read_text().replace(", quality: {floor: 0.8}", ""))
    with pytest.raises(PlanError, match=r"drkit.yaml:\d+: .*canary.*needs a quality floor"):
        canary_from_plan(load_plan(plan_file))
    (tmp_path / "canary.jsonl").write_text('{"id": "x", "prompt": "p"}\n')
    with pytest.raises(PlanError, match=r"canary.jsonl:1: expected"):
        canary_from_plan(load_plan(plan_file))
    none = _plan(tmp_path, "http://127.0.0.1:1/v1", "http://127.0.0.1:2/v1", canary="")
    assert canary_from_plan(load_plan(none)) is None
