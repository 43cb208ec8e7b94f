"""The ``Provider`` interface: one streaming call to one LLM upstream.

As small as httpx's transport: one method, :meth:`Provider.open`, taking a
:class:`ProviderRequest` and giving a :class:`ProviderStream` of checked SSE events.
:class:`~drkit.connectors.llm.client.UpstreamClient` is the real one (pooled aiohttp).
Behaviour is added by wrapping, keeping the interface:

- :class:`MeteredProvider` counts attempts and failure reasons per target;
- :class:`FaultyProvider` fails a seeded fraction of calls before they start (drills);
- :class:`MockProvider` answers in process from a handler (fast unit tests of the
  failover engine; next to, never instead of, the simulator and official-SDK tests).

The failover engine (:mod:`drkit.gateway.failover`) composes providers: it tries a
route's targets through one provider, in order.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

from drkit.connectors.llm.deadlines import Deadlines
from drkit.connectors.llm.sse import Dialect, SSEEvent, error_payload, is_content, is_terminal
from drkit.connectors.llm.upstream_errors import stream_error
from drkit.errors import UpstreamError
from drkit.types import Secret


@dataclass(frozen=True, slots=True)
class ProviderRequest:
    """One call: where (dialect, base URL), what (the body, asking for ``stream: true``),
    how long (deadlines), with which key, and a label for errors (the target's name)."""

    dialect: Dialect
    base_url: str
    body: Mapping[str, Any]
    deadlines: Deadlines = field(default_factory=Deadlines)
    api_key: Secret | None = field(default=None, repr=False)
    headers: Mapping[str, str] | None = None
    name: str | None = None


class ProviderStream(Protocol):
    """An open answer: iterate it for :class:`SSEEvent` s."""

    @property
    def first_content(self) -> bool:
        """True once a content event was read (``sse.carries_content``)."""

    @property
    def complete(self) -> bool:
        """True once the terminal event was read: the answer is complete."""

    def __aiter__(self) -> AsyncIterator[SSEEvent]: ...

    def reads(self) -> AsyncIterator[list[SSEEvent]]:
        """The same events, those that arrived together in one list (never empty): a
        proxy writes each list on in one write."""
        ...


class Provider(Protocol):
    def open(self, request: ProviderRequest) -> AbstractAsyncContextManager[ProviderStream]:
        """Open a streaming call (one upstream request each time: not idempotent).

        Entering raises :class:`UpstreamError` for a connection failure, a deadline or an
        error status, classified (``reason``, ``retryable``, ``retry_after``). Iterating
        yields events already checked: an in-stream error event, bad JSON, a stall past
        a deadline or a cut raise UpstreamError; iteration stops after the terminal event.
        Leaving the block releases the connection (closed when the answer was not read to
        its end). Never puts the API key into an error, a log or a repr.
        """
        ...

    async def aclose(self) -> None:
        """Release pooled connections (idempotent)."""
        ...


# --- in process ----------------------------------------------------------------------------

#: what a MockProvider handler returns for a request: the upstream's events (raise an
#: UpstreamError from the handler for a failure before the answer starts)
Handler = Callable[[ProviderRequest], Iterable[SSEEvent]]


class _CheckedStream:
    """Events from a list, checked as :class:`UpstreamStream` checks the wire's."""

    def __init__(self, request: ProviderRequest, events: Iterable[SSEEvent]) -> None:
        self.dialect = request.dialect
        self.where = request.name or request.dialect
        self.events = events
        self.first_content = False
        self.complete = False

    def __aiter__(self) -> AsyncIterator[SSEEvent]:
        return self._events()

    async def reads(self) -> AsyncIterator[list[SSEEvent]]:
        async for ev in self._events():  # in process, every event comes by itself
            yield [ev]

    async def _events(self) -> AsyncIterator[SSEEvent]:
        for ev in self.events:
            try:
                err = error_payload(self.dialect, ev)
                content = err is None and is_content(self.dialect, ev)
                terminal = err is None and is_terminal(self.dialect, ev)
            except ValueError as exc:
                raise UpstreamError(
                    f"{self.where}: malformed stream event (not JSON)",
                    status=502,
                    reason="malformed",
                ) from exc
            if err is not None:
                raise stream_error(err, self.where)
            self.first_content = self.first_content or content
            yield ev
            if terminal:
                self.complete = True
                return
        raise UpstreamError(
            f"{self.where}: the stream ended before its final event", reason="stream_cut"
        )


class MockProvider:
    """A provider answered in process by ``handler(request)`` (no sockets, no timers).

    The handler returns the upstream's SSE events (``parse_sse(encode_json_sse(...))``)
    or raises UpstreamError; the events are checked like a real stream's (an error event
    raises, a list without the terminal event is a cut stream). ``requests`` keeps every
    request, in order."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[ProviderRequest] = []

    @asynccontextmanager
    async def open(self, request: ProviderRequest) -> AsyncIterator[ProviderStream]:
        self.requests.append(request)
        yield _CheckedStream(request, self.handler(request))

    async def aclose(self) -> None:
        return None


# --- wrappers ----------------------------------------------------------------------------


class _MeteredStream:
    def __init__(self, inner: ProviderStream, failed: Callable[[UpstreamError], None]) -> None:
        self.inner = inner
        self.failed = failed

    @property
    def first_content(self) -> bool:
        return self.inner.first_content

    @property
    def complete(self) -> bool:
        return self.inner.complete

    def __aiter__(self) -> AsyncIterator[SSEEvent]:
        return self._events()

    async def _events(self) -> AsyncIterator[SSEEvent]:
        async for batch in self.reads():
            for ev in batch:
                yield ev

    async def reads(self) -> AsyncIterator[list[SSEEvent]]:
        try:
            async for batch in self.inner.reads():
                yield batch
        except UpstreamError as exc:
            self.failed(exc)
            raise


class MeteredProvider:
    """Counts, per target name: ``attempts``, ``completed`` answers and ``failures`` by
    reason (before or during the answer)."""

    def __init__(self, inner: Provider) -> None:
        self.inner = inner
        self.attempts: Counter[str] = Counter()
        self.completed: Counter[str] = Counter()
        self.failures: Counter[tuple[str, str]] = Counter()

    @asynccontextmanager
    async def open(self, request: ProviderRequest) -> AsyncIterator[ProviderStream]:
        name = request.name or request.dialect
        self.attempts[name] += 1

        def failed(exc: UpstreamError) -> None:
            self.failures[name, exc.reason] += 1

        try:
            context = self.inner.open(request)
            stream = await context.__aenter__()
        except UpstreamError as exc:
            failed(exc)
            raise
        metered = _MeteredStream(stream, failed)
        try:
            yield metered
        except BaseException as exc:
            if not await context.__aexit__(type(exc), exc, exc.__traceback__):
                raise
        else:
            await context.__aexit__(None, None, None)
        if stream.complete:
            self.completed[name] += 1

    async def aclose(self) -> None:
        await self.inner.aclose()


class FaultyProvider:
    """Fails a seeded fraction ``rate`` of calls before they start, with ``reason`` (a
    retryable 503 by default): the same seed fails the same calls, so drills repeat."""

    def __init__(
        self, inner: Provider, *, rate: float, seed: int = 0, reason: str = "status_5xx"
    ) -> None:
        self.inner = inner
        self.rate = rate
        self.reason = reason
        self._random = random.Random(seed)

    def open(self, request: ProviderRequest) -> AbstractAsyncContextManager[ProviderStream]:
        if self._random.random() < self.rate:
            raise UpstreamError(
                f"{request.name or request.dialect}: injected fault ({self.reason})",
                status=503,
                reason=self.reason,
            )
        return self.inner.open(request)

    async def aclose(self) -> None:
        await self.inner.aclose()
