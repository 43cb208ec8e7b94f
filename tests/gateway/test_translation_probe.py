"""The translation probe: a secondary whose dialect cannot carry what the route's clients
send is not ready to take over, and ``drkit providers`` says which field.

A real gateway (uvicorn) built from a plan writes its events into drkit's state; the
official openai SDK sends requests to it; the primary is an openai simulator, the secondary
an anthropic one (Anthropic returns no log probabilities: the translator refuses
``logprobs``). ``drkit providers`` then reads the same state.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import openai
import pytest
import uvicorn
import yaml
from gwkit import CLIENT_KEY, CLIENT_KEYS_ENV, KEY_ENV, QUIET, RunningGateway, Sims
from tests.servers import uvicorn_in_thread

from drkit.cli.main import main
from drkit.gateway.app import create_app
from drkit.gateway.config import TargetConfig, from_plan
from drkit.gateway.events import FanOutEventSink, MemoryEventSink, StateEventSink
from drkit.gateway.metrics import GatewayMetrics
from drkit.gateway.translation import DefaultTranslator
from drkit.gateway.translation_probe import TranslationProbe, feature, scrub
from drkit.plan.loader import load_plan
from drkit.state.store import StateStore

pytestmark = pytest.mark.usefixtures("cli_env")


def _plan(tmp_path: Path, sims: Sims, probe: float = 1.0) -> Path:
    def target(name: str, sim: Any, region: str) -> dict[str, Any]:
        return {
            "name": name,
            "provider": sim.dialect,
            "model": "sim-large",
            "base_url": sim.base_url,
            "api_key_env": KEY_ENV[sim.dialect],
            "region": region,
        }

    data = {
        "version": 1,
        "name": "probe-test",
        "tiers": {"critical": {"rto": "15m", "rpo": "1h", "multi_region": True}},
        "repositories": {
            "primary": {"name": "primary", "url": f"file://{tmp_path / 'repo'}", "region": "eu"}
        },
        "serving": {
            "auth": {"client_keys_env": CLIENT_KEYS_ENV},
            "gateway": {"translation_probe": probe},
            "routes": [
                {
                    "name": "assistant",
                    "tier": "critical",
                    "targets": [
                        target("openai-1", sims.oa1, "eu"),
                        target("anthropic-2", sims.an2, "us"),
                    ],
                }
            ],
        },
        "providers": [{"name": "openai", "sla": 99.9}, {"name": "anthropic", "sla": 99.5}],
    }
    path = tmp_path / "drkit.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@contextlib.contextmanager
def _gateway(plan: Path, state: StateStore) -> Iterator[RunningGateway]:
    config = replace(from_plan(load_plan(plan)), health=QUIET)
    memory = MemoryEventSink()
    app = create_app(config, events=FanOutEventSink(memory, StateEventSink(state)))
    server = uvicorn.Config(app, lifespan="on", log_level="warning", access_log=False)
    with uvicorn_in_thread(server, what="the gateway") as url:
        yield RunningGateway(url, app.state.gateway, memory)


def _ask(gw: RunningGateway, **extra: Any) -> str:
    client = openai.OpenAI(base_url=gw.url + "/v1", api_key=CLIENT_KEY, max_retries=0)
    try:
        raw = client.chat.completions.with_raw_response.create(
            model="assistant", messages=[{"role": "user", "content": "hello"}], **extra
        )
        assert raw.parse().choices[0].message.content
        return str(raw.headers["x-drkit-target"])
    finally:
        client.close()


def _providers(plan: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any]]:
    capsys.readouterr()
    code = main(["providers", "--plan", str(plan), "--json", "--window", "1d"])
    doc: dict[str, Any] = json.loads(capsys.readouterr().out)
    return code, doc


def _refusals(gw: RunningGateway) -> list[Any]:
    return [e for e in gw.events.events if e.kind == "translation_refused"]


def _eventually_probed(gw: RunningGateway, n: int) -> None:
    deadline = time.monotonic() + 5
    while gw.gateway.probe.probed < n:
        assert time.monotonic() < deadline, "the probe did not run"
        time.sleep(0.01)


def test_a_field_the_secondary_cannot_carry_makes_it_not_ready(
    sims: Sims, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = _plan(tmp_path, sims)
    state = StateStore(tmp_path / "state.db")
    try:
        with _gateway(plan, state) as gw:
            # the secondary takes traffic once (the primary fails): served recently
            sims.oa1.set_faults({"kind": "error", "status": 503})
            assert _ask(gw) == "anthropic-2"
            sims.oa1.clear_faults()
            assert _ask(gw) == "openai-1"
            _eventually_probed(gw, 2)
            assert _refusals(gw) == []  # plain requests: nothing refused, nothing recorded
            code, doc = _providers(plan, capsys)
            [ready] = doc["readiness"]
            assert (code, ready["ready"], ready["translatable"]) == (0, True, True)

            # clients start asking for log probabilities: the primary serves them; the
            # anthropic secondary could not, and the probe records it once
            for _ in range(3):
                assert _ask(gw, logprobs=True, top_logprobs=2) == "openai-1"
            _eventually_probed(gw, 5)
            [event] = _refusals(gw)
            assert event.component == "assistant/anthropic-2"
            assert event.data == {
                "route": "assistant",
                "target": "anthropic-2",
                "dialect": "anthropic",
                "client_dialect": "openai",
                "field": "logprobs",
                "reason": "Anthropic does not return log probabilities",
            }
            assert "hello" not in json.dumps(event.data) + event.message  # no content
            metrics = gw.gateway.metrics.render().decode()
            assert (
                'drkit_gateway_translation_refused_total{field="logprobs",'
                'route="assistant",target="anthropic-2"} 3.0'
            ) in metrics
        rows = state.events(kind="gateway.translation_refused")
        assert [e.data["field"] for e in rows] == ["logprobs"]
    finally:
        state.close()

    code, doc = _providers(plan, capsys)
    [ready] = doc["readiness"]
    assert code == 1
    assert (ready["served_recently"], ready["translatable"], ready["ready"]) == (
        True,
        False,
        False,
    )
    [refused] = ready["refused"]
    assert (refused["field"], refused["dialect"]) == ("logprobs", "anthropic")
    assert "clients send logprobs" in refused["hint"]
    assert main(["providers", "--plan", str(plan), "--window", "1d"]) == 1
    out = capsys.readouterr()
    assert "cannot carry logprobs" in out.out
    assert "Try: the route's clients send logprobs" in out.out + out.err


def test_a_share_of_zero_probes_nothing(sims: Sims, tmp_path: Path) -> None:
    state = StateStore(tmp_path / "state.db")
    try:
        with _gateway(_plan(tmp_path, sims, probe=0.0), state) as gw:
            assert _ask(gw, logprobs=True) == "openai-1"
            assert gw.gateway.probe.probed == 0
        assert state.events(kind="gateway.translation_refused") == []
    finally:
        state.close()


def _target(name: str, provider: str) -> TargetConfig:
    return TargetConfig(name=name, provider=provider, model="m", base_url="http://127.0.0.1:9")  # type: ignore[arg-type]


def test_one_event_per_route_target_and_feature_per_window() -> None:
    from drkit.gateway.config import RouteConfig

    events = MemoryEventSink()
    now = [1000.0]
    probe = TranslationProbe(
        DefaultTranslator(),
        events,
        GatewayMetrics(),
        share=1.0,
        window=60.0,
        clock=lambda: now[0],
    )
    route = RouteConfig("r", (_target("a", "openai"), _target("b", "anthropic")))
    audio = {"type": "input_audio", "input_audio": {"data": "c2VjcmV0", "format": "wav"}}
    for i in range(3):  # the same feature at another position is the same row
        content = [{"type": "text", "text": "secret"}] * i + [audio]
        body = {"model": "r", "messages": [{"role": "user", "content": content}]}
        probe.observe(route, "openai", body)  # no running loop: checked at once
    [event] = events.events
    assert event.data["field"] == "messages[].content[]"
    assert event.data["reason"] == "content part <value> has no Anthropic equivalent"
    assert "secret" not in json.dumps(event.data) + event.message
    assert "c2VjcmV0" not in json.dumps(event.data) + event.message
    now[0] += 61
    probe.observe(route, "openai", body)
    assert len(events.events) == 2  # a new window, a new event
    # an anthropic client on this route: the openai target is the other dialect
    probe.observe(route, "anthropic", {"model": "r", "max_tokens": 5, "messages": [], "x": 1})
    assert events.events[-1].data["target"] == "a"
    # a sample share: only that share of requests is probed
    rolls = iter([0.9, 0.1])
    sampled = TranslationProbe(
        DefaultTranslator(),
        MemoryEventSink(),
        GatewayMetrics(),
        share=0.5,
        window=60,
        sample=lambda: next(rolls),
    )
    sampled.observe(route, "openai", {"model": "r", "messages": []})
    sampled.observe(route, "openai", {"model": "r", "messages": []})
    assert sampled.probed == 1


def test_reasons_lose_the_values_they_quote() -> None:
    assert scrub("role 'wizard' has no Anthropic equivalent") == (
        "role <value> has no Anthropic equivalent"
    )
    assert scrub("1.7 is above Anthropic's maximum of 1") == (
        "<value> is above Anthropic's maximum of 1"
    )
    assert feature("messages[12].content[3].image_url") == "messages[].content[].image_url"


def test_a_refusal_counts_within_the_window_only(
    sims: Sims, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = _plan(tmp_path, sims)
    now = time.time()
    state = StateStore(tmp_path / "state.db")
    move = {"route": "assistant", "from": "openai-1", "to": "anthropic-2"}
    state.record_event("gateway.failover", "assistant/openai-1", "to b", move, at=now - 60)
    data = {"route": "assistant", "target": "anthropic-2", "dialect": "anthropic"}
    data |= {"field": "n", "reason": "Anthropic returns one choice per request (n must be 1)"}
    state.record_event(
        "gateway.translation_refused", "assistant/anthropic-2", "n", data, at=now - 2 * 86400
    )
    # another route's refusal says nothing about this one
    other = {**data, "route": "elsewhere", "field": "logprobs"}
    state.record_event(
        "gateway.translation_refused", "elsewhere/anthropic-2", "x", other, at=now - 60
    )
    state.close()
    code, doc = _providers(plan, capsys)  # --window 1d: the refusal is older
    assert (code, doc["readiness"][0]["refused"]) == (0, [])
    capsys.readouterr()
    assert main(["providers", "--plan", str(plan), "--json", "--window", "3d"]) == 1
    [refused] = json.loads(capsys.readouterr().out)["readiness"][0]["refused"]
    assert refused["field"] == "n"
