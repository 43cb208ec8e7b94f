"""``UpstreamStream.reads()``: the events of one network read together, checked as one by
one, against a raw HTTP upstream on 127.0.0.1 that sends each answer in one write."""

from __future__ import annotations

import socketserver
import threading
from collections.abc import Iterator

import orjson
import pytest

from drkit.connectors.llm.client import Deadlines, UpstreamClient
from drkit.connectors.llm.sse import SSEEvent, parse_sse
from drkit.errors import UpstreamError

FAST = Deadlines(connect=1.0, first_token=1.0, stream_idle=1.0, total=5.0)


def chunk(content: str) -> bytes:
    data = {"id": "c", "model": "m", "choices": [{"index": 0, "delta": {"content": content}}]}
    return b"data: " + orjson.dumps(data) + b"\n\n"


ERROR = b'data: {"error":{"message":"overloaded","type":"server_error"}}\n\n'
DONE = b"data: [DONE]\n\n"


class OneWrite(socketserver.ThreadingTCPServer):
    """Answers every request with ``body``, its HTTP chunks ``pieces`` in one write."""

    daemon_threads = True
    block_on_close = False

    def __init__(self) -> None:
        self.pieces: list[bytes] = []
        super().__init__(("127.0.0.1", 0), _Handler)
        self.url = f"http://127.0.0.1:{self.server_address[1]}/v1"


class _Handler(socketserver.StreamRequestHandler):
    server: OneWrite

    def handle(self) -> None:
        length = 0
        while (line := self.rfile.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        self.rfile.read(length)
        body = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in self.server.pieces)
        self.wfile.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
            b"transfer-encoding: chunked\r\n\r\n" + body + b"0\r\n\r\n"
        )
        self.wfile.flush()


@pytest.fixture
def upstream() -> Iterator[OneWrite]:
    server = OneWrite()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


async def reads(server: OneWrite) -> tuple[list[list[SSEEvent]], UpstreamError | None, bool]:
    batches: list[list[SSEEvent]] = []
    async with (
        UpstreamClient() as client,
        client.stream(
            dialect="openai", base_url=server.url, body={"stream": True}, deadlines=FAST
        ) as up,
    ):
        try:
            async for batch in up.reads():
                batches.append(batch)
        except UpstreamError as exc:
            return batches, exc, up.complete
        return batches, None, up.complete


async def test_one_write_of_several_http_chunks_is_one_read(upstream: OneWrite) -> None:
    upstream.pieces = [chunk("a"), chunk("b"), chunk("c") + DONE]
    batches, error, complete = await reads(upstream)
    assert error is None
    assert complete
    want = [ev.data for ev in parse_sse(chunk("a") + chunk("b") + chunk("c") + DONE)]
    assert [[ev.data for ev in b] for b in batches] == [want]


async def test_the_events_ahead_of_an_error_come_first_then_the_error(
    upstream: OneWrite,
) -> None:
    upstream.pieces = [chunk("a") + chunk("b") + ERROR + chunk("never") + DONE]
    batches, error, complete = await reads(upstream)
    assert [ev.json()["choices"][0]["delta"]["content"] for b in batches for ev in b] == ["a", "b"]
    assert error is not None
    assert "overloaded" in str(error)
    assert not complete


async def test_nothing_after_the_terminal_event(upstream: OneWrite) -> None:
    upstream.pieces = [chunk("a") + DONE + chunk("after the end")]
    batches, error, complete = await reads(upstream)
    assert error is None
    assert complete
    assert [ev.data for b in batches for ev in b][-1] == "[DONE]"
    assert len([ev for b in batches for ev in b]) == 2
