"""The failover engine in process, on MockProvider (fast): the same rules the simulator
and official-SDK tests check end to end, plus the Provider wrappers.

These sit next to, never instead of, ``test_gateway_scenarios.py`` (real servers, SDKs).
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from drkit.connectors.llm.client import Deadlines
from drkit.connectors.llm.provider import (
    FaultyProvider,
    MeteredProvider,
    MockProvider,
    ProviderRequest,
)
from drkit.connectors.llm.replies import make_reply
from drkit.connectors.llm.sse import SSEEvent, parse_sse
from drkit.connectors.llm.wire import anthropic_events, openai_events
from drkit.errors import UpstreamError
from drkit.gateway.app import create_app
from drkit.gateway.config import GatewayConfig, HealthPolicy, RouteConfig, TargetConfig

QUIET = HealthPolicy(base_ejection=60.0, probe_interval=60.0, max_probe_interval=60.0)
BODY = {"model": "assistant", "messages": [{"role": "user", "content": "hi"}]}


def events(request: ProviderRequest, *, keep: int | None = None) -> list[SSEEvent]:
    """What the simulator would stream for ``request`` (the first ``keep`` frames only)."""
    body = dict(request.body)
    reply = make_reply(request.dialect, body, seed=1, mode="lorem")
    make = openai_events if request.dialect == "openai" else anthropic_events
    frames = [frame for _, frame in make(body, reply, "r1")]
    return parse_sse(b"".join(frames[:keep]))


def target(name: str, dialect: str = "openai") -> TargetConfig:
    return TargetConfig(name, dialect, "sim-large", f"http://{name}.invalid/v1")  # type: ignore[arg-type]


def config(*names: str, mode: str = "error") -> GatewayConfig:
    route = RouteConfig(
        "assistant",
        tuple(target(n) for n in names),
        Deadlines(),
        on_stream_failure=mode,  # type: ignore[arg-type]
    )
    return GatewayConfig(routes=(route,), auth_disabled=True, health=QUIET)


async def post(app: Any, body: dict[str, Any] = BODY) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
        return await client.post("/v1/chat/completions", json=body)


def failing(name: str, exc: UpstreamError, **cuts: int) -> Any:
    """A handler: ``name`` raises ``exc`` (or is cut after ``cuts[name]`` frames)."""

    def handler(request: ProviderRequest) -> list[SSEEvent]:
        if request.name == name and not cuts:
            raise exc
        return events(request, keep=cuts.get(str(request.name)))

    return handler


async def test_a_failure_before_the_answer_fails_over_to_the_next_target() -> None:
    provider = MockProvider(failing("a", UpstreamError("a: 503", reason="status_5xx")))
    metered = MeteredProvider(provider)
    r = await post(create_app(config("a", "b"), provider=metered))
    assert r.status_code == 200
    assert r.json()["choices"][0]["finish_reason"] == "stop"
    assert (r.headers["x-drkit-target"], r.headers["x-drkit-attempts"]) == ("b", "2")
    assert [q.name for q in provider.requests] == ["a", "b"]
    assert metered.attempts == {"a": 1, "b": 1}
    assert metered.failures == {("a", "status_5xx"): 1}
    assert metered.completed == {"b": 1}


async def test_a_non_streaming_answer_cut_mid_way_starts_over() -> None:
    provider = MockProvider(failing("a", UpstreamError("unused"), a=4))
    r = await post(create_app(config("a", "b"), provider=provider))
    assert r.status_code == 200
    assert r.headers["x-drkit-failover-reason"] == "a:stream_cut"
    # the second attempt was the original request (no prefill of a's partial answer)
    assert provider.requests[1].body["messages"][-1]["role"] == "user"


async def test_the_gateways_own_key_rejected_fails_over_and_ejects() -> None:
    provider = MockProvider(
        failing("a", UpstreamError("a: 401", status=401, reason="upstream_auth"))
    )
    app = create_app(config("a", "b"), provider=provider)
    for attempts in ("2", "1"):
        r = await post(app)
        assert r.status_code == 200
        assert r.headers["x-drkit-attempts"] == attempts
    assert app.state.gateway.board.health["a"].last_reason == "upstream_auth"


async def test_an_ejected_target_is_the_last_resort() -> None:
    down = {"a", "b"}

    def handler(request: ProviderRequest) -> list[SSEEvent]:
        if request.name in down:
            raise UpstreamError(f"{request.name}: refused", reason="connect")
        return events(request)

    app = create_app(config("a", "b"), provider=MockProvider(handler))
    assert (await post(app)).status_code == 503  # both ejected at once
    down = {"a"}  # b recovered; nothing probed it
    app.state.gateway.board.health["a"].ejected_until = 0.0  # a's trial is due: tried first
    r = await post(app)
    assert r.status_code == 200
    assert r.headers["x-drkit-target"] == "b"


def test_a_faulty_provider_fails_the_same_calls_for_the_same_seed() -> None:
    def pattern(seed: int) -> list[bool]:
        faulty = FaultyProvider(MockProvider(events), rate=0.5, seed=seed)
        out = []
        for _ in range(20):
            try:
                faulty.open(ProviderRequest("openai", "http://x", BODY, name="t"))
            except UpstreamError as exc:
                out.append(not exc.retryable)  # injected faults are retryable: False
            else:
                out.append(True)
        return out

    assert pattern(3) == pattern(3)
    assert pattern(3) != pattern(4)
    assert 0 < sum(pattern(3)) < 20


async def test_mock_streams_are_checked_like_real_ones() -> None:
    """A list without its terminal event is a cut stream, as on the wire."""
    request = ProviderRequest("anthropic", "http://x", {**BODY, "max_tokens": 5})
    whole = MockProvider(events)
    async with whole.open(request) as up:
        seen = [ev async for ev in up]
    assert (up.first_content, up.complete) == (True, True)
    assert len(seen) == len(events(request))
    cut = MockProvider(lambda r: events(r, keep=3))
    async with cut.open(request) as up:
        with pytest.raises(UpstreamError, match="before its final event"):
            _ = [ev async for ev in up]
    assert not up.complete
