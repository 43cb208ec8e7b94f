"""What the chat endpoints send: a whole reply, or a stream of SSE events.

Both write straight to ASGI ``send`` (no Starlette Response objects on the hot path).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from starlette.types import Message, Receive, Send

from drkit.errors import GatewayError
from drkit.gateway.config import Dialect
from drkit.gateway.dialects import encode_batch, encode_sse, is_terminal, stream_error_event
from drkit.gateway.failover import Trace
from drkit.gateway.redact import Redactor

JSON = b"application/json"
_SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
]


def raw_headers(headers: dict[str, str] | None) -> list[tuple[bytes, bytes]]:
    if not headers:
        return []
    return [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]


class Reply:
    """A whole response: status, content type, body and the trace headers."""

    __slots__ = ("body", "headers", "media_type", "status")

    def __init__(
        self, status: int, media_type: bytes, body: bytes, headers: dict[str, str] | None
    ) -> None:
        self.status = status
        self.media_type = media_type
        self.body = body
        self.headers = headers

    async def send(self, send: Send) -> None:
        raw = raw_headers(self.headers)
        raw.append((b"content-type", self.media_type))
        raw.append((b"content-length", str(len(self.body)).encode()))
        await send({"type": "http.response.start", "status": self.status, "headers": raw})
        await send({"type": "http.response.body", "body": self.body})


class StreamReply:
    """A streaming answer: the engine's event batches written as SSE as they come.

    A client that disconnects cancels the stream (and with it the upstream attempt): the
    ASGI server does not raise on writes to a closed connection, so a watcher waits for
    ``http.disconnect`` next to the stream. Once the final write is made, uvicorn's
    ``receive`` answers ``http.disconnect`` too (the response is complete): that is the
    end of the answer, not the client leaving, so the watcher stands down before it.

    :attr:`outcome` says how it ended: ``ok`` (the answer's final event went out),
    ``failed`` (cut off: an in-stream error event ended it) or ``client_gone``.
    """

    __slots__ = ("dialect", "events", "opened_after", "outcome", "trace")

    def __init__(
        self, dialect: Dialect, events: AsyncIterator[Any], trace: Trace, opened_after: float
    ) -> None:
        self.dialect = dialect
        self.events = events
        self.trace = trace
        #: seconds from the request to the first content event (what the latency
        #: histogram shows for a stream)
        self.opened_after = opened_after
        self.outcome = "failed"

    async def send(self, receive: Receive, send: Send, redactor: Redactor) -> None:
        dialect = self.dialect
        task = asyncio.current_task()
        assert task is not None
        state = {"finished": False, "gone": False}

        async def watch() -> None:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    if not state["finished"]:
                        state["gone"] = True
                        task.cancel()
                    return

        watcher = asyncio.get_running_loop().create_task(watch())
        headers = raw_headers(self.trace.headers())
        headers.extend(_SSE_HEADERS)
        ended = cut = False
        try:
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            try:
                async for batch in self.events:
                    if ended or not batch:
                        continue  # nothing follows the final event
                    data = encode_batch(dialect, batch)
                    # the final event ends the response in the same write
                    ended = is_terminal(dialect, batch[-1])
                    message: Message = {"type": "http.response.body", "body": data}
                    if ended:
                        # from this write on, receive() says http.disconnect: the end
                        state["finished"] = True
                    else:
                        message["more_body"] = True
                    await send(message)
            except GatewayError as exc:
                # e.g. a TranslationError on an event with no twin in the client's dialect
                if not ended:
                    error = stream_error_event(dialect, redactor.text(str(exc)), "gateway_error")
                    ended = True
                    state["finished"] = True
                    cut = True
                    await send({"type": "http.response.body", "body": encode_sse(dialect, error)})
            if not ended:
                state["finished"] = True
                await send({"type": "http.response.body", "body": b""})
            output = self.trace.output
            complete = output is not None and output.terminal and self.trace.failed is None
            self.outcome = "ok" if complete and not cut else "failed"
        except asyncio.CancelledError:
            if not state["gone"]:
                raise
            task.uncancel()  # the client went away: the stream ends here, quietly
            self.outcome = "client_gone"
        finally:
            state["finished"] = True
            watcher.cancel()
            with contextlib.suppress(Exception):
                await self.events.aclose()  # type: ignore[attr-defined]
