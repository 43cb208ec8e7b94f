"""Health across requests on real servers: ejection, probe recovery, retry budget, events."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from gwkit import CLIENT_KEY, Sims, chat_attempts, route_for

from drkit.gateway.config import HealthPolicy
from drkit.gateway.events import JsonlEventSink, read_events

PROBING = HealthPolicy(
    eject_after=3, base_ejection=30.0, probe_interval=0.1, max_probe_interval=0.3
)


def chat(url: str) -> httpx.Response:
    return httpx.post(
        url + "/v1/chat/completions",
        headers={"authorization": f"Bearer {CLIENT_KEY}"},
        json={"model": "assistant", "messages": [{"role": "user", "content": "hi"}]},
        timeout=10,
    )


def wait_for(predicate: Any, timeout: float = 10.0) -> None:
    """Poll until ``predicate()`` holds (not a timing assertion: generous bound)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.02)


def test_ejection_then_probe_recovery_returns_traffic_to_the_primary(
    sims: Sims, gateway_for: Any
) -> None:
    gw = gateway_for(route_for(sims.oa1, sims.an2), health=PROBING)
    sims.oa1.set_faults({"kind": "error", "status": 503})
    for _ in range(3):
        r = chat(gw.url)
        assert r.status_code == 200
        assert r.headers["x-drkit-target"] == "anthropic-2"
    assert gw.state("openai-1") == "ejected"
    # ejected: requests go straight to the secondary, no retry
    for _ in range(5):
        r = chat(gw.url)
        assert r.headers["x-drkit-attempts"] == "1"
        assert "openai-1:ejected" in r.headers["x-drkit-failover-reason"]
    board = gw.gateway.board
    # every primary request since the ejection was a probe, never client traffic
    assert chat_attempts(sims.oa1) == 3 + board.health["openai-1"].probes
    assert httpx.get(gw.url + "/readyz").status_code == 200  # the secondary serves
    sims.oa1.clear_faults()
    wait_for(lambda: gw.state("openai-1") == "healthy")
    r = chat(gw.url)
    assert r.headers["x-drkit-target"] == "openai-1"
    assert r.headers["x-drkit-attempts"] == "1"
    kinds = gw.events.kinds()
    assert kinds.count("ejection") == 1
    assert kinds[-1] == "recovery"
    assert gw.events.events[-1].data["via"] == "probe"


def test_readyz_fails_when_a_route_has_no_target_in_service(sims: Sims, gateway_for: Any) -> None:
    gw = gateway_for(route_for(sims.oa1))
    assert httpx.get(gw.url + "/readyz").status_code == 200
    sims.oa1.set_faults({"kind": "refuse"})
    assert chat(gw.url).status_code == 503
    r = httpx.get(gw.url + "/readyz")
    assert r.status_code == 503
    assert r.json() == {"ready": False, "routes": {"assistant": []}}
    assert httpx.get(gw.url + "/healthz").status_code == 200


def test_retry_budget_stops_an_outage_from_multiplying_upstream_load(
    sims: Sims, gateway_for: Any
) -> None:
    policy = HealthPolicy(
        eject_after=1000, probe_interval=60, retry_budget_ratio=0.0, retry_budget_min=2
    )
    gw = gateway_for(route_for(sims.oa1, sims.an2), health=policy)
    sims.oa1.set_faults({"kind": "error", "status": 503})
    results = [chat(gw.url) for _ in range(5)]
    assert [r.status_code for r in results] == [200, 200, 503, 503, 503]
    assert "retry_budget_exhausted" in results[-1].headers["x-drkit-failover-reason"]
    # one attempt per request on the primary, retries only within the budget
    assert (chat_attempts(sims.oa1), chat_attempts(sims.an2)) == (5, 2)
    assert gw.events.kinds().count("retry_budget_exhausted") == 3


def test_retry_after_puts_the_target_in_cooldown(sims: Sims, gateway_for: Any) -> None:
    gw = gateway_for(route_for(sims.an1, sims.oa2))
    sims.an1.set_faults({"kind": "rate_limit", "retry_after": 0.5})
    assert chat(gw.url).headers["x-drkit-target"] == "openai-2"
    assert gw.state("anthropic-1") == "cooldown"
    assert chat(gw.url).headers["x-drkit-failover-reason"] == "anthropic-1:cooldown"
    sims.an1.clear_faults()
    wait_for(lambda: gw.state("anthropic-1") == "healthy")
    assert chat(gw.url).headers["x-drkit-target"] == "anthropic-1"
    assert chat_attempts(sims.an1) == 2


def test_metrics_count_requests_attempts_failovers_and_states(sims: Sims, gateway_for: Any) -> None:
    gw = gateway_for(route_for(sims.oa1, sims.an2))
    sims.oa1.set_faults({"kind": "refuse"})
    chat(gw.url)
    text = httpx.get(gw.url + "/metrics").text
    assert (
        'drkit_gateway_requests_total{dialect="openai",outcome="ok",route="assistant"} 1.0' in text
    )
    assert (
        'drkit_gateway_failovers_total{reason="connect",route="assistant",target="openai-1"} 1.0'
        in text
    )
    assert 'drkit_gateway_target_state{state="ejected",target="openai-1"} 1.0' in text
    assert (
        'drkit_gateway_attempts_total{result="ok",route="assistant",target="anthropic-2"} 1.0'
        in text
    )
    assert "drkit_gateway_request_seconds_bucket" in text


def test_jsonl_events_are_readable_by_other_tools(tmp_path: Path) -> None:
    sink = JsonlEventSink(tmp_path / "events" / "gateway.jsonl")
    sink.record("ejection", "openai-1", "ejected", {"until": 1.5})
    sink.record("recovery", "openai-1", "back", {"via": "probe"})
    with (tmp_path / "events" / "gateway.jsonl").open("a") as f:
        f.write('{"torn')  # a crash mid-line must not hide the events before it
    events = read_events(tmp_path / "events" / "gateway.jsonl")
    assert [(e.kind, e.data) for e in events] == [
        ("ejection", {"until": 1.5}),
        ("recovery", {"via": "probe"}),
    ]


def test_a_probe_answered_with_a_client_error_counts_as_up(sims: Sims, gateway_for: Any) -> None:
    """A target that judges the probe request (400) is serving; it must not stay ejected."""
    gw = gateway_for(route_for(sims.an1, sims.oa2), health=PROBING)
    sims.an1.set_faults({"kind": "refuse"})
    assert chat(gw.url).headers["x-drkit-target"] == "openai-2"
    assert gw.state("anthropic-1") == "ejected"
    sims.an1.set_faults({"kind": "error", "status": 400, "message": "max_tokens too small"})
    wait_for(lambda: gw.state("anthropic-1") == "healthy")
    assert gw.events.events[-1].data["via"] == "probe"


def test_events_fan_out_to_the_file_and_the_log(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from drkit.gateway.events import FanOutEventSink, LoggingEventSink

    sink = FanOutEventSink(JsonlEventSink(tmp_path / "e.jsonl"), LoggingEventSink())
    with caplog.at_level(logging.INFO, logger="drkit.gateway.events"):
        sink.record("ejection", "a", "target a ejected for 1s", {"until": 2.0})
        sink.record("recovery", "a", "target a back in service", {"via": "probe"})
    assert [e.kind for e in read_events(tmp_path / "e.jsonl")] == ["ejection", "recovery"]
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("WARNING", "ejection: target a ejected for 1s"),
        ("INFO", "recovery: target a back in service"),
    ]


def test_an_ejected_target_is_the_last_resort_when_the_available_ones_fail(
    sims: Sims, gateway_for: Any
) -> None:
    quiet_long = HealthPolicy(base_ejection=60.0, probe_interval=60.0, max_probe_interval=60.0)
    gw = gateway_for(route_for(sims.oa1, sims.an2), health=quiet_long)
    sims.oa1.set_faults({"kind": "error", "status": 503})
    sims.an2.set_faults({"kind": "refuse"})
    assert chat(gw.url).status_code == 503  # the secondary refused: ejected at once
    assert gw.state("anthropic-2") == "ejected"
    assert gw.state("openai-1") == "healthy"  # one soft failure of three
    sims.an2.clear_faults()  # recovered, but not re-probed for a minute
    r = chat(gw.url)
    assert r.status_code == 200, r.text
    assert r.headers["x-drkit-target"] == "anthropic-2"
    assert r.headers["x-drkit-attempts"] == "2"
    assert r.headers["x-drkit-failover-reason"] == ("anthropic-2:ejected, openai-1:status_5xx")
    assert gw.state("anthropic-2") == "healthy"  # the answer brought it back
    failover = [e for e in gw.events.events if e.kind == "failover"][-1]
    assert failover.data["to"] == "anthropic-2"
    assert failover.data["last_resort"] is True


def test_gateway_events_are_the_state_store_events(tmp_path: Path) -> None:
    """One Event type: the file, the memory sink and the state store give the same values."""
    from drkit.gateway.events import MemoryEventSink
    from drkit.state.store import Event, StateStore

    path = tmp_path / "e.jsonl"
    JsonlEventSink(path).record("ejection", "a", "target a ejected", {"until": 2.0})
    with path.open("a") as f:  # a line written before the field was named ``at``
        f.write('{"ts": 5.0, "kind": "recovery", "component": "a", "message": "m", "data": {}}\n')
    read = read_events(path)
    assert all(type(e) is Event for e in read)
    assert [(e.id, e.kind) for e in read] == [(1, "ejection"), (2, "recovery")]
    assert read[1].at == 5.0
    assert read[0].data == {"until": 2.0}
    memory = MemoryEventSink()
    memory.record("failover", "r/a", "moved", {"to": "b"})
    assert type(memory.events[0]) is Event
    assert memory.events[0].id == 1
    store = StateStore(tmp_path / "state.db")
    store.record_event("gateway.failover", "r/a", "moved", {"to": "b"})
    stored = store.events(kind="gateway.")[0]
    store.close()
    assert set(stored.to_dict()) == set(memory.events[0].to_dict())
