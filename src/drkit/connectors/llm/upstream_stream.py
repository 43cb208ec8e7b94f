"""An open streaming answer of one upstream attempt, read under its deadlines.

:class:`UpstreamStream` is what :meth:`UpstreamClient.stream
<drkit.connectors.llm.client.UpstreamClient.stream>` yields: iterating it enforces the
first-token, idle and total deadlines on every read, checks each event (an in-stream
error event or bad JSON raises a classified :class:`~drkit.errors.UpstreamError`) and
stops after the dialect's terminal event.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping

import aiohttp
import orjson

from drkit.connectors.llm.deadlines import Deadlines
from drkit.connectors.llm.sse import (
    DONE,
    Dialect,
    SSEEvent,
    SSEParser,
    error_payload,
    is_content,
    is_terminal,
)
from drkit.connectors.llm.upstream_errors import PHASE_TEXT, stream_error
from drkit.errors import UpstreamError


class UpstreamStream:
    """An open streaming response: iterate it for :class:`SSEEvent` s.

    Iteration enforces the first-token, idle and total deadlines, stops after the
    terminal event, and raises classified :class:`UpstreamError` s.
    """

    def __init__(
        self,
        response: aiohttp.ClientResponse,
        dialect: Dialect,
        deadlines: Deadlines,
        started: float,
        where: str,
    ) -> None:
        self.response = response
        self.status = response.status
        self.headers: Mapping[str, str] = response.headers
        self.dialect: Dialect = dialect
        self._deadlines = deadlines
        self._started = started
        self._where = where
        #: True once a content event has been read (the first-token deadline is met).
        self.first_content = False
        #: True once the terminal event has been read (the answer is complete).
        self.complete = False
        #: monotonic time of the first content event, for time-to-first-token metrics.
        self.first_content_at: float | None = None

    async def drain(self, timeout: float = 1.0) -> None:
        """Read what follows the final event (the chunked body's end) so that the
        connection goes back to the pool instead of being closed; errors are ignored."""
        content = self.response.content
        try:
            if content.is_eof():  # the usual case: the end came with the last event
                content.read_nowait()
                return
            async with asyncio.timeout(timeout):
                await content.read()
        except (TimeoutError, aiohttp.ClientError, RuntimeError):
            pass

    def __aiter__(self) -> AsyncIterator[SSEEvent]:
        return self._events()

    async def _events(self) -> AsyncIterator[SSEEvent]:
        async for batch in self._reads():
            for ev in batch:
                yield ev

    def reads(self) -> AsyncIterator[list[SSEEvent]]:
        """The events of each network read together (never an empty list), so that a
        proxy can write them on in one write. Checked as one by one: the events before a
        bad one come first, the error on the next step; nothing after the terminal one."""
        return self._reads()

    async def _reads(self) -> AsyncIterator[list[SSEEvent]]:
        loop = asyncio.get_running_loop()
        d = self._deadlines
        total_at = self._started + d.total
        first_at = self._started + d.first_token
        parser = SSEParser()
        content = self.response.content
        read = content.readany
        where = self._where
        while True:
            failure: UpstreamError | None = None
            chunk = b""
            try:
                # what is already buffered is taken without a timer (it cannot time out)
                chunk = content.read_nowait()
                if not chunk and not content.is_eof():
                    if self.first_content:
                        deadline, phase = loop.time() + d.stream_idle, "timeout_idle"
                    else:
                        deadline, phase = first_at, "timeout_first_token"
                    if total_at <= deadline:
                        deadline, phase = total_at, "timeout_total"
                    try:
                        async with asyncio.timeout_at(deadline):
                            chunk = await read()  # all that is buffered
                    except TimeoutError:
                        raise UpstreamError(
                            f"{where}: {PHASE_TEXT[phase]}",
                            status=504,
                            retryable=True,
                            reason=phase,
                        ) from None
            except aiohttp.ClientError as exc:
                failure = connection_failure(
                    f"{where}: the connection dropped mid-stream ({type(exc).__name__})",
                    "stream_cut",
                    exc,
                )
            if failure is not None:
                raise failure
            if not chunk:
                raise UpstreamError(
                    f"{where}: the stream ended before its final event",
                    status=502,
                    retryable=True,
                    reason="stream_cut",
                )
            events = parser.feed(chunk)
            if not events:
                continue
            bad: UpstreamError | None = None
            for i, ev in enumerate(events):
                try:
                    terminal = self._check(ev, loop)
                except UpstreamError as exc:
                    bad = exc
                    del events[i:]
                    break
                if terminal:
                    self.complete = True
                    del events[i + 1 :]
                    break
            if events:
                yield events
            if bad is not None:
                raise bad
            if self.complete:
                return

    def _check(self, ev: SSEEvent, loop: asyncio.AbstractEventLoop) -> bool:
        """Parse and classify one event: raise for an error event or bad JSON, note the
        first content event; True when it is the terminal event."""
        dialect = self.dialect
        if ev.data != DONE:
            # orjson for speed; what it refuses is left to json (NaN, ...)
            with contextlib.suppress(orjson.JSONDecodeError):
                ev._json = orjson.loads(ev.data)
        try:
            err = error_payload(dialect, ev)
            content = err is None and not self.first_content and is_content(dialect, ev)
            terminal = err is None and is_terminal(dialect, ev)
        except ValueError as exc:
            raise UpstreamError(
                f"{self._where}: malformed stream event (not JSON)",
                status=502,
                retryable=True,
                reason="malformed",
            ) from exc
        if err is not None:
            raise stream_error(err, self._where)
        if content:
            self.first_content = True
            self.first_content_at = loop.time()
        return terminal


def connection_failure(message: str, reason: str, exc: aiohttp.ClientError) -> UpstreamError:
    """A retryable 502 caused by ``exc`` -- chained unless it carries the API key.

    ``ClientResponseError`` holds ``request_info`` with the request headers and its repr
    prints them, so it is neither ``__cause__`` nor (callers raise outside their
    ``except`` block) ``__context__``: no traceback or log can show the key.
    """
    failure = UpstreamError(message, status=502, retryable=True, reason=reason)
    if not isinstance(exc, aiohttp.ClientResponseError):
        failure.__cause__ = exc
    return failure
