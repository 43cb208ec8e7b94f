"""The end of an answer, on the production server (``drkit gateway serve``'s uvicorn
config): after a stream the connection stays open for the next request, the request is
counted by how it ended, and its log line comes after the answer's last byte.

Once the final write of a stream is made, uvicorn's ``receive`` answers
``http.disconnect``; that must not be taken for the client leaving while the gateway
still finishes the upstream side (here: an upstream whose chunked body ends a moment
after its last event, as a provider's may).
"""

from __future__ import annotations

import http.client
import json
import logging
import socket
import socketserver
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from gwkit import CLIENT_KEY, FAST, KEY_ENV, Sims, make_config, route_for
from tests.servers import uvicorn_in_thread

from drkit.gateway.config import RouteConfig, TargetConfig
from drkit.gateway.server import uvicorn_config

_CHUNK = (
    '{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m",'
    '"choices":[{"index":0,"delta":%s,"logprobs":null,"finish_reason":%s}]}'
)
SSE = (
    "".join(
        f"data: {_CHUNK % (delta, finish)}\n\n"
        for delta, finish in (
            ('{"role":"assistant","content":""}', "null"),
            ('{"content":"Hello"}', "null"),
            ("{}", '"stop"'),
        )
    )
    + "data: [DONE]\n\n"
).encode()


class LateEndUpstream(socketserver.ThreadingTCPServer):
    """An OpenAI-dialect upstream on 127.0.0.1 that sends a whole answer, then the end of
    its chunked body ``lag`` seconds later (keep-alive; counts its connections)."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, lag: float = 0.05) -> None:
        self.lag = lag
        self.connections = 0
        super().__init__(("127.0.0.1", 0), _LateEndHandler)
        self.port: int = self.server_address[1]

    def __enter__(self) -> LateEndUpstream:
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()


class _LateEndHandler(socketserver.StreamRequestHandler):
    server: LateEndUpstream

    def handle(self) -> None:
        self.server.connections += 1
        while True:
            length = None
            while line := self.rfile.readline():
                if line == b"\r\n":
                    break
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if length is None:
                return  # the connection closed
            self.rfile.read(length)
            self.wfile.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                b"transfer-encoding: chunked\r\n\r\n" + b"%x\r\n%s\r\n" % (len(SSE), SSE)
            )
            self.wfile.flush()
            time.sleep(self.server.lag)
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()


@pytest.fixture
def production_gateway() -> Iterator[Any]:
    """``start(route)``: a gateway under ``drkit gateway serve``'s uvicorn config."""
    running: list[Any] = []

    def start(route: RouteConfig) -> tuple[str, Any]:
        config = uvicorn_config(make_config(route), "127.0.0.1", 0)
        context = uvicorn_in_thread(config, what="the gateway")
        url = context.__enter__()
        running.append(context)
        return url, config.app.gateway  # type: ignore[attr-defined]

    yield start
    for context in running:
        context.__exit__(None, None, None)


def _post(conn: http.client.HTTPConnection, body: dict[str, Any]) -> tuple[int, bytes]:
    conn.request(
        "POST",
        "/v1/chat/completions",
        body=json.dumps(body),
        headers={"authorization": f"Bearer {CLIENT_KEY}", "content-type": "application/json"},
    )
    response = conn.getresponse()
    return response.status, response.read()


def _requests_total(gateway: Any, outcome: str, want: float) -> float:
    """The request counter for ``outcome``, waited for (bounded): a stream is counted when
    the server has finished it, a moment after the client read its last byte."""
    key = ("assistant", "openai", outcome)
    deadline = time.monotonic() + 5
    while True:
        child = gateway.metrics._requests.get(key)
        value = float(child._value.get()) if child is not None else 0.0
        if value >= want or time.monotonic() > deadline:
            return value
        time.sleep(0.01)


BODY = {"model": "assistant", "messages": [{"role": "user", "content": "hi"}]}


def test_after_a_stream_the_connection_serves_the_next_request(production_gateway: Any) -> None:
    with LateEndUpstream() as upstream:
        target = TargetConfig(
            name="late-end",
            provider="openai",
            model="m",
            base_url=f"http://127.0.0.1:{upstream.port}/v1",
            api_key_env=KEY_ENV["openai"],
            region="eu-west",
        )
        url, gateway = production_gateway(
            RouteConfig(name="assistant", targets=(target,), deadlines=FAST)
        )
        conn = http.client.HTTPConnection(url.removeprefix("http://"), timeout=10)
        status, data = _post(conn, {**BODY, "stream": True})
        assert status == 200
        assert data.endswith(b"data: [DONE]\n\n")
        sock = conn.sock
        status, data = _post(conn, BODY)  # on the same connection
        assert status == 200
        assert json.loads(data)["choices"][0]["message"]["content"] == "Hello"
        assert conn.sock is sock
        status, data = _post(conn, {**BODY, "stream": True})
        assert status == 200
        assert data.endswith(b"data: [DONE]\n\n")
        assert conn.sock is sock
        conn.close()
        # the streams were completed requests, not clients that went away
        assert _requests_total(gateway, "ok", 3) == 3
        assert "client_gone" not in {k[2] for k in gateway.metrics._requests}


def test_a_stream_cut_after_it_started_is_counted_failed(
    sims: Sims, production_gateway: Any
) -> None:
    url, gateway = production_gateway(route_for(sims.oa1))
    sims.oa1.set_faults({"kind": "stream_cut", "after": 2})
    conn = http.client.HTTPConnection(url.removeprefix("http://"), timeout=10)
    status, data = _post(conn, {**BODY, "stream": True})
    assert status == 200
    assert b"stream_interrupted" in data
    assert _requests_total(gateway, "failed", 1) == 1
    assert _requests_total(gateway, "ok", 0) == 0
    conn.close()


class _WaitingHandler(logging.Handler):
    """Holds the gateway's loop in ``emit`` until the client has had its answer (or 5 s)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.client_done = threading.Event()
        self.seen: list[bool] = []  # per request line: had the client its answer?

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("request "):
            self.seen.append(self.client_done.wait(5))
            self.client_done.clear()


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_the_request_line_is_written_after_the_last_write_to_the_client(
    sims: Sims, production_gateway: Any, stream: bool
) -> None:
    url, _gateway = production_gateway(route_for(sims.oa1))
    handler = _WaitingHandler()
    logger = logging.getLogger("drkit.gateway")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        conn = http.client.HTTPConnection(url.removeprefix("http://"), timeout=10)
        status, data = _post(conn, {**BODY, "stream": stream})
        handler.client_done.set()
        assert status == 200
        assert data.endswith(b"data: [DONE]\n\n") if stream else json.loads(data)["choices"]
        deadline = time.monotonic() + 10
        while not handler.seen and time.monotonic() < deadline:
            time.sleep(0.01)
        conn.close()
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    # the line waited for the client: it was written after the answer's last byte went out
    assert handler.seen == [True]


def _body_chunks(url: str, body: dict[str, Any]) -> list[bytes]:
    """POST ``body`` on a raw socket; the HTTP chunks of the answer (its writes), in order."""
    host, port = url.removeprefix("http://").split(":")
    payload = json.dumps(body).encode()
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nhost: gw\r\n"
            b"content-type: application/json\r\n"
            + f"authorization: Bearer {CLIENT_KEY}\r\n".encode()
            + f"content-length: {len(payload)}\r\n\r\n".encode()
            + payload
        )
        reader = sock.makefile("rb")
        assert reader.readline().startswith(b"HTTP/1.1 200")
        while reader.readline() != b"\r\n":
            pass
        chunks = []
        while size := int(reader.readline().strip(), 16):
            chunks.append(reader.read(size))
            assert reader.read(2) == b"\r\n"
        return chunks


def test_the_events_of_one_upstream_read_go_to_the_client_in_one_write(
    production_gateway: Any,
) -> None:
    with LateEndUpstream(lag=0.0) as upstream:  # its whole answer in one write
        target = TargetConfig(
            name="one-write",
            provider="openai",
            model="m",
            base_url=f"http://127.0.0.1:{upstream.port}/v1",
            api_key_env=KEY_ENV["openai"],
            region="eu-west",
        )
        url, _gateway = production_gateway(
            RouteConfig(name="assistant", targets=(target,), deadlines=FAST)
        )
        chunks = _body_chunks(url, {**BODY, "stream": True})
    assert len(chunks) == 1, chunks
    events = chunks[0].split(b"\n\n")
    assert events[-2:] == [b"data: [DONE]", b""]
    assert len(events) == 5  # the upstream's four events
