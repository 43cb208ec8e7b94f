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
    assert live.lifted["d", "r"].why == "lease"
    assert [e.kind for e in events.events] == ["live_fault", "live_fault_lifted"]


def test_the_added_p99_stop_condition(monkeypatch: pytest.MonkeyPatch) -> None:
    live, _, _, events = faults(monkeypatch)
    asyncio.run(live.install(spec(fraction=0.5, max_added_p99_s=0.5)))
    for _ in range(30):
        live.observe("r", 200, f"a:{LIVE_REASON}", 0.9)
        live.observe("r", 200, None, 0.1)
    live.tick()
    lifted = live.lifted["d", "r"]
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
    assert live.lifted["d", "r"].why == "stop_condition: the quality canary ejected b on route r"


def test_the_error_rate_counts_over_a_minimum_sample(monkeypatch: pytest.MonkeyPatch) -> None:
    live, _, _, _ = faults(monkeypatch)
    asyncio.run(live.install(spec(fraction=0.1, max_error_rate=0.02)))
    live.observe("r", 503, f"a:{LIVE_REASON}", 0.1)  # 1 error: not over 2% of 50
    assert live.by_route
    live.observe("r", "200-cut", None, 0.1)  # a stream cut after its status is one too
    assert live.lifted["d", "r"].why is not None
    assert "2 client-visible errors in 2 requests" in str(live.lifted["d", "r"].why)


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
    assert live.lifted["d", "r"].why == "stop_condition: the quality canary holds b on route r"


def two_routes(
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[LiveFaults, Clock, MemoryEventSink]:
    """Routes r (a, b) and s (c, d): a drill drains a and c."""
    monkeypatch.setenv("DRKIT_TEST_LIVE_ADMIN_KEYS", "k")

    def target(n: str) -> TargetConfig:
        return TargetConfig(name=n, provider="openai", model="m", base_url="http://127.0.0.1:9")

    r = (target("a"), target("b"))
    s = (target("c"), target("d"))
    config = GatewayConfig(
        routes=(RouteConfig("r", r), RouteConfig("s", s)),
        admin_keys_env="DRKIT_TEST_LIVE_ADMIN_KEYS",
        auth_disabled=True,
        live_max_fraction=1.0,
    )
    clock = Clock()
    events = MemoryEventSink()
    board = HealthBoard((*r, *s), HealthPolicy(), events, clock=clock)
    return LiveFaults(config, board, events, clock=clock), clock, events


def drain(**kw: Any) -> dict[str, Any]:
    routes = [{"route": "r", "targets": ["a"]}, {"route": "s", "targets": ["c"]}]
    base = {"drill": "d", "owner": "o", "routes": routes, "fraction": 1.0}
    return {**base, "duration_s": 60, "lease_s": 5, **kw}


def test_a_drill_on_two_routes_is_installed_all_or_none(monkeypatch: pytest.MonkeyPatch) -> None:
    from drkit.errors import LiveFaultRefused

    live, _, events = two_routes(monkeypatch)
    routes = [{"route": "r", "targets": ["a"]}, {"route": "s", "targets": ["c", "d"]}]
    with pytest.raises(LiveFaultRefused, match="route s has no healthy target besides c, d"):
        asyncio.run(live.install(drain(routes=routes)))
    assert not live.by_route
    assert not events.events
    with pytest.raises(LiveFaultRefused, match="route 'r' is twice"):
        asyncio.run(live.install(drain(routes=[routes[0], routes[0]])))
    faults = asyncio.run(live.install(drain()))
    assert [(f.drill, f.route, f.targets) for f in faults] == [
        ("d", "r", ("a",)),
        ("d", "s", ("c",)),
    ]
    assert live.hit("r", "a")
    assert live.hit("s", "c")
    assert not live.hit("s", "d")
    assert [e.kind for e in events.events] == ["live_fault", "live_fault"]


def test_one_renewal_covers_every_route_and_the_lease_lifts_them_all(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    live, clock, events = two_routes(monkeypatch)
    asyncio.run(live.install(drain()))
    clock.now += 4
    renewed = asyncio.run(live.renew("d"))
    assert [f.lease_until for f in renewed] == [clock.now + 5, clock.now + 5]
    clock.now += 5.1
    assert not live.hit("r", "a")  # route r's request sees the lease over: both lift
    assert not live.by_route
    assert {(k, f.why) for k, f in live.lifted.items()} == {
        (("d", "r"), "lease"),
        (("d", "s"), "lease"),
    }
    assert [e.kind for e in events.events].count("live_fault_lifted") == 2


def test_a_stop_condition_of_one_route_lifts_the_whole_drill(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from drkit.gateway.live import drill_view

    live, clock, _ = two_routes(monkeypatch)
    asyncio.run(live.install(drain(max_error_rate=0.05)))
    for _ in range(10):
        live.observe("r", 200, f"a:{LIVE_REASON}", 0.1)
    for _ in range(2):
        live.observe("s", 503, f"c:{LIVE_REASON}", 0.2)
    assert live.by_route  # 2 errors are not over 5 % of 50
    live.observe("s", 503, f"c:{LIVE_REASON}", 0.2)
    assert not live.by_route
    why = "stop_condition: 3 client-visible errors in 3 requests (over 5.00% of at least 50)"
    assert {f.why for f in live.lifted.values()} == {f"{why} on route s"}
    view = drill_view(live.find("d"), clock.now)
    assert view["state"] == "lifted"
    assert view["route"] is None
    assert view["figures"]["requests"] == 13  # the drill's: both routes
    per_route = {v["route"]: v["figures"] for v in view["routes"]}
    assert per_route["r"]["requests"] == 10
    assert per_route["r"]["client_visible_errors"] == 0
    assert per_route["s"]["client_visible_errors"] == 3
