"""The chat endpoints' plain-ASGI path and the uvicorn setup of ``drkit gateway serve``.

The chat endpoints bypass Starlette; these tests pin what that path must still do: a
client that goes away mid-stream cancels the upstream attempt, and under the served
configuration (coalesced writes) keep-alive connections carry several answers, streamed
and not, next to the Starlette-served endpoints.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from gwkit import CLIENT_KEY, SIM_KEYS, Sims, make_config, route_for
from tests.servers import uvicorn_in_thread

from drkit.connectors.llm.simulator import ProviderSimulator
from drkit.gateway.config import Deadlines
from drkit.gateway.events import MemoryEventSink
from drkit.gateway.server import uvicorn_config

HEADERS = {"authorization": f"Bearer {CLIENT_KEY}"}
SLOW = Deadlines(connect=2.0, first_token=5.0, stream_idle=5.0, total=60.0)


@pytest.mark.parametrize("dialect", ["openai", "anthropic"])
def test_a_client_gone_mid_stream_cancels_the_upstream_attempt(
    gateway_for: Any, dialect: str
) -> None:
    # tokens every 0.2 s: the answer takes seconds, the client leaves after the first bytes
    sim = ProviderSimulator(dialect, api_key=SIM_KEYS[dialect], token_delay=0.2)  # type: ignore[arg-type]
    sim.start()
    try:
        gw = gateway_for(route_for(sim, deadlines=SLOW))
        path = "/v1/chat/completions" if dialect == "openai" else "/v1/messages"
        body = {
            "model": "assistant",
            "max_tokens": 200,
            "stream": True,
            "messages": [{"role": "user", "content": "tell me a long story"}],
        }
        with (
            httpx.Client(timeout=10) as client,
            client.stream("POST", gw.url + path, json=body, headers=HEADERS) as r,
        ):
            assert r.status_code == 200
            first = next(r.iter_raw())
            assert first  # the answer had started
        deadline = time.monotonic() + 10
        while sim.stats()["in_flight"] and time.monotonic() < deadline:
            time.sleep(0.05)
        stats = sim.stats()
        assert stats["in_flight"] == 0  # the upstream stream was closed...
        assert stats["completed"] == 0  # ...before the simulator finished the answer
    finally:
        sim.stop()


@contextlib.contextmanager
def served(sims: Sims) -> Iterator[str]:
    """A gateway with the exact uvicorn settings of ``drkit gateway serve``."""
    config = make_config(route_for(sims.oa1, sims.an1))
    # host and port are placeholders: uvicorn_in_thread serves on its own free-port socket
    server = uvicorn_config(config, "127.0.0.1", 0, events=MemoryEventSink())
    with uvicorn_in_thread(server, what="the gateway") as url:
        yield url


def test_the_served_gateway_answers_many_requests_on_one_connection(sims: Sims) -> None:
    body = {"model": "assistant", "messages": [{"role": "user", "content": "hi"}]}
    abody = {**body, "max_tokens": 50}
    with served(sims) as url, httpx.Client(timeout=10) as client:
        for _ in range(3):
            r = client.post(url + "/v1/chat/completions", json=body, headers=HEADERS)
            assert r.status_code == 200
            assert r.headers["content-length"] == str(len(r.content))
            assert r.json()["choices"][0]["message"]["content"]
            assert r.headers["x-drkit-target"] == "openai-1"

            with client.stream(
                "POST", url + "/v1/messages", json={**abody, "stream": True}, headers=HEADERS
            ) as s:
                assert s.status_code == 200
                assert s.headers["content-type"].startswith("text/event-stream")
                text = b"".join(s.iter_raw())
            assert text.startswith(b"event: message_start\n")
            assert text.endswith(b'event: message_stop\ndata: {"type":"message_stop"}\n\n')

            with client.stream(
                "POST", url + "/v1/chat/completions", json={**body, "stream": True}, headers=HEADERS
            ) as s:
                text = b"".join(s.iter_raw())
            assert text.endswith(b"data: [DONE]\n\n")

            assert client.get(url + "/healthz").json() == {"status": "ok"}
            assert client.get(url + "/v1/models", headers=HEADERS).status_code == 200
            # the chat paths keep Starlette's answers for other methods
            assert client.get(url + "/v1/chat/completions").status_code == 405
        bad = client.post(url + "/v1/messages", content=b"{not json", headers=HEADERS)
        assert bad.status_code == 400
        assert bad.json()["error"]["type"] == "invalid_request_error"
    # nine chat answers, all from the first target (openai, for both client dialects)
    assert int(sims.oa1.stats()["by_endpoint"].get("chat", 0)) == 9
