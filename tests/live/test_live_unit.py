"""The live-fault logic in one process, with a fake clock: the dead man, the stop
conditions (added p99, the quality canary) and the figures. The HTTP, process and Redis
paths are in the other files of this directory, on real servers."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from drkit.gateway.config import GatewayConfig, HealthPolicy, RouteConfig, TargetConfig
from drkit.gateway.events import MemoryEventSink
from drkit.gateway.health import HealthBoard
from drkit.gateway.live import LIVE_REASON, LiveFaults


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def faults(
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[LiveFaults, HealthBoard, Clock, MemoryEventSink]:
    monkeypatch.setenv("DRKIT_TEST_LIVE_ADMIN_KEYS", "k")
    targets = tuple(
        TargetConfig(name=n, provider="openai", model="m", base_url="http://127.0.0.1:9")
        for n in ("a", "b")
    )
    config = GatewayConfig(
        routes=(RouteConfig("r", targets),),
        admin_keys_env="DRKIT_TEST_LIVE_ADMIN_KEYS",
        auth_disabled=True,
        live_max_fraction=1.0,
    )
    clock = Clock()
    events = MemoryEventSink()
    board = HealthBoard(targets, HealthPolicy(), events, clock=clock)
    return LiveFaults(config, board, events, clock=clock), board, clock, events


def spec(**kw: Any) -> dict[str, Any]:
    base = {"drill": "d", "owner": "o", "route": "r", "targets": ["a"], "fraction": 1.0}
    return {**base, "duration_s": 60, "lease_s": 5, **kw}


def test_the_lease_and_the_duration_end_the_fault_inline(monkeypatch: pytest.MonkeyPatch) -> None:
    live, _, clock, events = faults(monkeypatch)
    asyncio.run(live.install(spec()))
    assert live.hit("r", "a")
    assert not live.hit("r", "b")  # not a faulted target
    clock.now += 4
    asyncio.run(live.renew("d"))
    clock.now += 4.9  # renewed: 8.9s after the install, still on
    assert live.hit("r", "a")
    clock.now += 0.2  # lease over: the next request lifts it itself (no timer ran)
    assert not live.hit("r", "a")
    assert live.lifted["d"].why == "lease"
    assert [e.kind for e in events.events] == ["live_fault", "live_fault_lifted"]


def test_the_added_p99_stop_condition(monkeypatch: pytest.MonkeyPatch) -> None:
    live, _, _, events = faults(monkeypatch)
    asyncio.run(live.install(spec(fraction=0.5, max_added_p99_s=0.5)))
    for _ in range(30):
        live.observe("r", 200, f"a:{LIVE_REASON}", 0.9)
        live.observe("r", 200, None, 0.1)
    live.tick()
    lifted = live.lifted["d"]
    assert lifted.why is not None
    assert lifted.why.startswith("stop_condition: the faulted requests add 0.800s at p99")
    figures = events.events[-1].data["figures"]
    assert figures["share"] == 0.5
    assert figures["carried"] == 30
    assert figures["added_p99_s"] == pytest.approx(0.8)


def test_the_quality_canary_stops_the_drill(monkeypatch: pytest.MonkeyPatch) -> None:
    live, board, clock, _ = faults(monkeypatch)
    asyncio.run(live.install(spec(fraction=0.1)))
    live.tick()
    assert live.by_route  # nothing to stop yet
    clock.now += 1
    board.record_failure(board.targets["b"], "quality")
    board.record_failure(board.targets["b"], "quality")
    board.record_failure(board.targets["b"], "quality")
    live.tick()
    assert live.lifted["d"].why == "stop_condition: the quality canary ejected b"


def test_the_error_rate_counts_over_a_minimum_sample(monkeypatch: pytest.MonkeyPatch) -> None:
    live, _, _, _ = faults(monkeypatch)
    asyncio.run(live.install(spec(fraction=0.1, max_error_rate=0.02)))
    live.observe("r", 503, f"a:{LIVE_REASON}", 0.1)  # 1 error: not over 2% of 50
    assert live.by_route
    live.observe("r", "200-cut", None, 0.1)  # a stream cut after its status is one too
    assert live.lifted["d"].why is not None
    assert "2 client-visible errors in 2 requests" in str(live.lifted["d"].why)


def test_a_quality_hold_stops_the_drill_and_is_no_secondary(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from drkit.errors import LiveFaultRefused

    live, _, _, _ = faults(monkeypatch)
    held: set[str] = set()
    live.held = held.__contains__
    held.add("b")
    with pytest.raises(LiveFaultRefused, match="no healthy target besides a"):
        asyncio.run(live.install(spec(fraction=0.1)))
    held.clear()
    asyncio.run(live.install(spec(fraction=0.1)))
    held.add("b")  # the canary holds the secondary mid-drill
    live.tick()
    assert live.lifted["d"].why == "stop_condition: the quality canary holds b"
