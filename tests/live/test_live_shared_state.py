"""The shared live-fault state on a real redis-server, with the interleavings that decide it
forced: two processes' :class:`LiveFaults` in one event loop, each with its own
:class:`RedisLive`, refreshed by hand instead of by their loops."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from drkit.gateway.config import GatewayConfig, HealthPolicy, RouteConfig, TargetConfig
from drkit.gateway.events import MemoryEventSink
from drkit.gateway.health import HealthBoard
from drkit.gateway.live import LiveFaults
from drkit.gateway.redis_live import RedisLive

KEYS_ENV = "DRKIT_TEST_SHARED_ADMIN_KEYS"


def process(url: str, prefix: str) -> tuple[LiveFaults, RedisLive]:
    targets = tuple(
        TargetConfig(name=n, provider="openai", model="m", base_url="http://127.0.0.1:9")
        for n in ("a", "b")
    )
    config = GatewayConfig(
        routes=(RouteConfig("r", targets),),
        admin_keys_env=KEYS_ENV,
        auth_disabled=True,
        live_max_fraction=1.0,
    )
    events = MemoryEventSink()
    live = LiveFaults(config, HealthBoard(targets, HealthPolicy(), events), events)
    shared = RedisLive(live, url, prefix=prefix)
    live.shared = shared  # no background loop: the test refreshes by hand
    return live, shared


def spec(drill: str) -> dict[str, Any]:
    return {
        "drill": drill,
        "owner": "o",
        "route": "r",
        "targets": ["a"],
        "fraction": 1.0,
        "duration_s": 60,
        "lease_s": 30,
    }


def run(redis_url: str, prefix: str, body: Callable[..., Awaitable[None]]) -> None:
    async def main() -> None:
        a, ra = process(redis_url, prefix)
        b, rb = process(redis_url, prefix)
        try:
            await body(a, ra, b, rb)
        finally:
            for live, shared in ((a, ra), (b, rb)):
                await live.stop()
                await shared.redis.aclose()

    asyncio.run(main())


def test_a_read_that_predates_the_install_does_not_lift_it(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A refresh whose read of the shared faults left before this process installed one
    must not take the fault's absence from that read for a lift elsewhere (it did: the
    process lifted its own new fault, told no one, and the others kept applying it)."""
    monkeypatch.setenv(KEYS_ENV, "k")

    async def body(a: LiveFaults, ra: RedisLive, b: LiveFaults, rb: RedisLive) -> None:
        real = ra.redis.hgetall
        read, go_on = asyncio.Event(), asyncio.Event()

        async def slow_read(name: str) -> Any:
            out = await real(name)
            if not read.is_set():  # the first read (the refresh's) is done: without the fault
                read.set()
                await go_on.wait()
            return out

        ra.redis.hgetall = slow_read  # type: ignore[method-assign,assignment]
        refresh = asyncio.create_task(ra.refresh())
        await read.wait()
        await a.install(spec("race"))  # installed (and written) after that read
        go_on.set()
        await refresh
        ra.redis.hgetall = real  # type: ignore[method-assign]
        assert [f.drill for f in a.faults() if f.active] == ["race"]
        await ra.refresh()  # a read issued after the write finds it
        await rb.refresh()
        assert a.by_route["r"].active
        assert b.by_route["r"].active

    run(redis_url, "drkit:test:race:", body)


def test_a_lift_counts_the_processes_still_applying_the_fault(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``applying`` in a fault's view: this process while it holds the fault, and each
    other one whose last shared figures say it still does, until it goes silent."""
    monkeypatch.setenv(KEYS_ENV, "k")

    async def body(a: LiveFaults, ra: RedisLive, b: LiveFaults, rb: RedisLive) -> None:
        (fault,) = await a.install(spec("count"))
        await rb.refresh()  # b adopts the fault and shares its figures
        await a.figures_of(fault)
        assert fault.public(a.clock())["applying"] == 2

        a.lift(fault, "aborted")
        for t in list(a._pending):
            await t
        await a.figures_of(fault)
        # b has not heard yet: it still applies the fault, and says so
        assert b.by_route["r"].active
        assert fault.public(a.clock())["applying"] == 1

        await rb.refresh()  # b reads the shared state, finds the fault gone, lifts
        for t in list(b._pending):
            await t
        assert not b.by_route
        await a.figures_of(fault)
        assert fault.public(a.clock())["applying"] == 0

        # a process that stopped sharing its figures (dead, or cut off) counts as gone
        (other,) = await a.install(spec("silent"))
        await rb.refresh()
        await a.figures_of(other)
        assert other.public(a.clock())["applying"] == 2
        assert other.public(a.clock() + 3.5)["applying"] == 1

    run(redis_url, "drkit:test:count:", body)


def test_a_renewal_that_lands_after_the_lift_leaves_no_fault_behind(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A renewal's write on its way while the drill is lifted must not put the fault back
    in the shared state, where a process starting later would adopt it."""
    monkeypatch.setenv(KEYS_ENV, "k")

    async def body(a: LiveFaults, ra: RedisLive, b: LiveFaults, rb: RedisLive) -> None:
        (fault,) = await a.install(spec("late"))
        a.lift(fault, "aborted")
        for t in list(a._pending):
            await t
        await ra.put(fault)  # the renewal's write, landing after the lift's
        assert await ra.redis.hgetall(ra._hash) == {}
        await rb.refresh()
        assert not b.by_route

    run(redis_url, "drkit:test:late:", body)
