"""The upstream client against the simulator: answers, and every fault classified."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from drkit.connectors.llm.client import Deadlines, UpstreamClient, UpstreamStream
from drkit.connectors.llm.simulator import ProviderSimulator
from drkit.connectors.llm.sse import SSEEvent
from drkit.errors import UpstreamError
from drkit.types import Secret

KEY = Secret("sk-very-secret-key-0123")
FAST = Deadlines(connect=1.0, first_token=0.4, stream_idle=0.4, total=5.0)


def body(sim: ProviderSimulator) -> dict[str, Any]:
    """A streaming request: every upstream call streams (the gateway folds the events for
    a non-streaming client)."""
    out: dict[str, Any] = {"model": "m", "messages": [{"role": "user", "content": "hello there"}]}
    if sim.dialect == "anthropic":
        out["max_tokens"] = 200
    out["stream"] = True
    return out


@pytest.fixture
async def client() -> AsyncIterator[UpstreamClient]:
    async with UpstreamClient() as c:
        yield c


async def run(
    client: UpstreamClient, sim: ProviderSimulator, *, deadlines: Deadlines = FAST
) -> list[SSEEvent]:
    kw: dict[str, Any] = {
        "dialect": sim.dialect,
        "base_url": sim.base_url,
        "body": body(sim),
        "deadlines": deadlines,
        "api_key": KEY,
        "name": "primary",
    }
    async with client.stream(**kw) as upstream:
        events = [ev async for ev in upstream]
        assert upstream.complete
        assert upstream.first_content
        return events


async def failure(
    client: UpstreamClient, sim: ProviderSimulator, *, deadlines: Deadlines = FAST
) -> UpstreamError:
    with pytest.raises(UpstreamError) as exc:
        await run(client, sim, deadlines=deadlines)
    err = exc.value
    cause = err.__cause__
    for text in (str(err), repr(err), repr(err.body), str(err.hint), repr(cause), str(cause)):
        assert KEY.reveal() not in text
    return err


async def test_answers_stream(client: UpstreamClient, sim: ProviderSimulator) -> None:
    events = await run(client, sim)
    assert isinstance(events, list)
    last = events[-1]
    assert last.data == "[DONE]" if sim.dialect == "openai" else last.event == "message_stop"
    assert sim.stats()["completed"] == 1


async def test_pooled_connections_are_reused(
    client: UpstreamClient, sim: ProviderSimulator
) -> None:
    for _ in range(5):
        await run(client, sim)
    assert sim.stats()["requests"] == 5
    # keep-alive: one connection served them all
    assert len(sim_server_connections(sim)) == 1


def sim_server_connections(sim: ProviderSimulator) -> list[Any]:
    assert sim._server is not None
    return [
        c
        for c in sim._server.server_state.connections
        if c.transport.get_extra_info("sockname")[1] == sim.port
    ]


@pytest.mark.parametrize(
    ("fault", "status", "reason", "retryable"),
    [
        ({"kind": "error", "status": 500}, 500, "status_5xx", True),
        ({"kind": "error", "status": 503}, 503, "status_5xx", True),
        ({"kind": "error", "status": 529}, 529, "status_5xx", True),
        ({"kind": "error", "status": 400, "message": "bad thing"}, 400, "status_4xx", False),
        ({"kind": "error", "status": 422}, 422, "status_4xx", False),
        ({"kind": "error", "status": 401}, 401, "upstream_auth", True),
        ({"kind": "error", "status": 403}, 403, "upstream_auth", True),
        ({"kind": "error", "status": 404}, 404, "model_not_found", True),
        ({"kind": "rate_limit", "retry_after": 2.5}, 429, "status_429", True),
    ],
)
async def test_error_statuses(
    client: UpstreamClient,
    sim: ProviderSimulator,
    fault: dict[str, Any],
    status: int,
    reason: str,
    retryable: bool,
) -> None:
    sim.set_faults(fault)
    err = await failure(client, sim)
    assert (err.status, err.reason, err.retryable) == (status, reason, retryable)
    assert err.body
    assert b"error" in err.body
    if reason == "status_429":
        assert err.retry_after == 2.5
    if status == 400:
        assert "bad thing" in str(err)
    assert sim.stats()["requests"] == 1


async def test_black_hole_and_latency_hit_the_first_token_deadline(
    client: UpstreamClient, sim: ProviderSimulator
) -> None:
    sim.set_faults({"kind": "black_hole"})
    err = await failure(client, sim)
    assert (err.reason, err.retryable) == ("timeout_first_token", True)
    sim.set_faults({"kind": "latency", "delay": 2.0})
    err = await failure(client, sim)
    assert err.reason == "timeout_first_token"
    sim.set_faults({"kind": "latency", "delay": 0.05})
    assert await run(client, sim)


async def test_refused_connections(client: UpstreamClient, sim: ProviderSimulator) -> None:
    await run(client, sim)  # a pooled keep-alive connection exists
    sim.set_faults({"kind": "refuse"})
    for _ in range(2):
        err = await failure(client, sim)
        assert (err.reason, err.retryable) == ("connect", True)
    assert sim.stats()["requests"] == 1
    sim.clear_faults()
    assert await run(client, sim)


@pytest.fixture
def full_backlog() -> Iterator[int]:
    """A port whose accept queue is full: new connections hang in SYN (a connect timeout)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    fillers = []
    for _ in range(4):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", port))
        fillers.append(s)
    yield port
    for s in fillers:
        s.close()
    server.close()


async def test_connect_timeout(client: UpstreamClient, full_backlog: int) -> None:
    with pytest.raises(UpstreamError) as exc:
        async with client.stream(
            dialect="openai",
            base_url=f"http://127.0.0.1:{full_backlog}/v1",
            body={"model": "m", "messages": [], "stream": True},
            deadlines=Deadlines(connect=0.3, first_token=5, stream_idle=5, total=5),
        ):
            pass
    assert (exc.value.reason, exc.value.retryable) == ("timeout_connect", True)


async def collect(upstream: UpstreamStream, into: list[SSEEvent]) -> None:
    async for ev in upstream:
        into.append(ev)


@pytest.mark.parametrize("mode", ["drop", "clean"])
async def test_stream_cut_after_tokens(
    client: UpstreamClient, sim: ProviderSimulator, mode: str
) -> None:
    sim.set_faults({"kind": "stream_cut", "after": 3, "mode": mode})
    seen: list[SSEEvent] = []
    async with client.stream(
        dialect=sim.dialect,
        base_url=sim.base_url,
        body=body(sim),
        deadlines=FAST,
        api_key=KEY,
    ) as upstream:
        with pytest.raises(UpstreamError) as exc:
            await collect(upstream, seen)
    assert (exc.value.reason, exc.value.retryable) == ("stream_cut", True)
    assert upstream.first_content
    assert not upstream.complete
    assert seen  # the tokens before the cut were delivered


async def test_stall_hits_idle_deadline_and_total(
    client: UpstreamClient, sim: ProviderSimulator
) -> None:
    sim.set_faults({"kind": "stream_stall", "after": 2})
    err = await failure(client, sim)
    assert (err.reason, err.retryable) == ("timeout_idle", True)
    slow = Deadlines(connect=1, first_token=1, stream_idle=5, total=0.6)
    err = await failure(client, sim, deadlines=slow)
    assert err.reason == "timeout_total"
    # a stall shorter than the idle deadline is only a hiccup
    sim.set_faults({"kind": "stream_stall", "after": 2, "delay": 0.1})
    assert await run(client, sim)


async def test_stall_before_first_token_counts_against_first_token(
    client: UpstreamClient, sim: ProviderSimulator
) -> None:
    sim.set_faults({"kind": "stream_stall", "after": 0})
    err = await failure(client, sim)
    assert err.reason == "timeout_first_token"


async def test_malformed(client: UpstreamClient, sim: ProviderSimulator) -> None:
    sim.set_faults({"kind": "malformed", "after": 1})
    err = await failure(client, sim)
    assert (err.reason, err.retryable) == ("malformed", True)


async def test_fault_first_n_then_recovers(client: UpstreamClient, sim: ProviderSimulator) -> None:
    sim.set_faults({"kind": "error", "status": 503, "first": 2})
    reasons = []
    for _ in range(4):
        try:
            await run(client, sim)
            reasons.append("ok")
        except UpstreamError as exc:
            reasons.append(exc.reason)
    assert reasons == ["status_5xx", "status_5xx", "ok", "ok"]
    assert sim.stats()["requests"] == 4


async def test_fail_rate_is_seeded(client: UpstreamClient) -> None:
    outcomes = []
    for _ in range(2):
        with ProviderSimulator("openai", seed=3) as sim:
            sim.set_faults({"kind": "error", "status": 503, "rate": 0.5})
            run_outcome = []
            for _ in range(12):
                try:
                    await run(client, sim)
                    run_outcome.append(True)
                except UpstreamError:
                    run_outcome.append(False)
            outcomes.append(run_outcome)
    assert outcomes[0] == outcomes[1]
    assert 0 < sum(outcomes[0]) < 12


@pytest.mark.parametrize(
    ("status", "reason", "retryable"),
    [
        (529, "status_5xx", True),
        (500, "status_5xx", True),
        (429, "status_429", True),
        (400, "status_4xx", False),
        (401, "upstream_auth", True),
    ],
)
async def test_error_event_mid_stream(
    client: UpstreamClient, sim: ProviderSimulator, status: int, reason: str, retryable: bool
) -> None:
    sim.set_faults({"kind": "stream_error", "after": 2, "status": status})
    seen: list[SSEEvent] = []
    async with client.stream(
        dialect=sim.dialect,
        base_url=sim.base_url,
        body=body(sim),
        deadlines=FAST,
        api_key=KEY,
    ) as upstream:
        with pytest.raises(UpstreamError) as exc:
            await collect(upstream, seen)
    assert (exc.value.reason, exc.value.retryable) == (reason, retryable)
    assert upstream.first_content


async def test_garbage_instead_of_http_never_leaks_the_key(client: UpstreamClient) -> None:
    """A peer answering non-HTTP: classified, retryable, and the key is not chained along."""

    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1024)
        writer.write(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(garbage, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(UpstreamError) as exc:
            async with client.stream(
                dialect="openai",
                base_url=f"http://127.0.0.1:{port}/v1",
                body={"model": "m", "messages": [], "stream": True},
                deadlines=FAST,
                api_key=KEY,
            ):
                pass
    finally:
        server.close()
        await server.wait_closed()
    err = exc.value
    assert (err.reason, err.retryable) == ("connect", True)
    chain = f"{err!r} {err.__cause__!r} {err.__context__!r}"
    assert KEY.reveal() not in chain
