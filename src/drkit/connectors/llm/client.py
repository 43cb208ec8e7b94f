"""The upstream client: one attempt against one provider target, every failure classified.

Every call streams (the gateway folds the events for a non-streaming client, so the
first-token and idle deadlines protect those requests too).

One shared :class:`UpstreamClient` (one pooled ``aiohttp`` session) serves the whole
gateway. The transport is aiohttp rather than httpx for speed: on this hot path httpx's
connection pool cost ~3 ms of CPU per request at 32 concurrent streams (its pool scans
every connection per request), aiohttp ~0.3 ms; the gateway's budget is 1 ms in all.

Each call gets four deadlines, enforced separately:

- ``connect``: TCP (and TLS) connection set-up; also bounds waiting for a pool slot;
- ``first_token``: from sending the request to the first *content* event of a stream
  (:func:`drkit.connectors.llm.sse.is_content`);
- ``stream_idle``: after the first content event, the longest gap between two events;
- ``total``: the whole attempt, whatever the phase.

Every failure is an :class:`~drkit.errors.UpstreamError` whose ``reason`` is one of
:data:`REASONS`, whose ``retryable`` says whether failover may try another target, and
whose ``retry_after`` carries a 429's ``Retry-After`` in seconds. API keys are only put
into request headers: never into errors, logs or reprs.

The pieces: :mod:`~drkit.connectors.llm.endpoints` (URL and headers per dialect),
:mod:`~drkit.connectors.llm.upstream_errors` (the classification; no aiohttp needed) and
:mod:`~drkit.connectors.llm.upstream_stream` (an open answer read under its deadlines);
their names stay importable from here.

Usage (streaming)::

    async with client.stream(dialect="anthropic", base_url=url, body=body,
                             deadlines=deadlines, api_key=key) as upstream:
        async for event in upstream:      # SSEEvent, already checked for in-stream errors
            ...
    # leaving the block closes the connection if the stream was not read to its end

The stream ends after the dialect's terminal event (``message_stop``/``[DONE]``); a
connection that ends before it raises ``UpstreamError(reason="stream_cut")``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Any

import aiohttp
import orjson

from drkit.connectors.llm.deadlines import Deadlines
from drkit.connectors.llm.endpoints import (
    ANTHROPIC_VERSION,
    endpoint_url,
    request_headers,
    stream_headers,
)
from drkit.connectors.llm.sse import Dialect
from drkit.connectors.llm.upstream_errors import (
    MAX_ERROR_BODY,
    PHASE_TEXT,
    REASONS,
    parse_retry_after,
    status_error,
    stream_error,
)
from drkit.connectors.llm.upstream_stream import UpstreamStream, connection_failure
from drkit.errors import UpstreamError
from drkit.types import Secret

if TYPE_CHECKING:
    from drkit.connectors.llm.provider import ProviderRequest

#: the client's names, kept importable from here (the pieces live in endpoints,
#: upstream_errors and upstream_stream)
__all__ = [
    "ANTHROPIC_VERSION",
    "MAX_ERROR_BODY",
    "REASONS",
    "Deadlines",
    "UpstreamClient",
    "UpstreamStream",
    "endpoint_url",
    "parse_retry_after",
    "request_headers",
    "status_error",
    "stream_error",
    "stream_headers",
]


class UpstreamClient:
    """One pooled HTTP client for all upstream calls of a gateway process.

    Connections are reused across requests and targets (keep-alive); close with
    :meth:`aclose` at shutdown. The session is created on first use, in the running
    event loop; use one client per loop.
    """

    def __init__(
        self,
        *,
        max_connections: int = 1000,
        keepalive_expiry: float = 30.0,
    ) -> None:
        self._max_connections = max_connections
        self._keepalive_expiry = keepalive_expiry
        self._session: aiohttp.ClientSession | None = None
        self._timeouts: dict[float, aiohttp.ClientTimeout] = {}
        # request headers per (dialect, key object, streaming): they hold the revealed key,
        # so they stay in this private map and are never logged or shown
        self._header_cache: dict[tuple[str, int], tuple[Secret | None, dict[str, str]]] = {}

    def _http(self) -> aiohttp.ClientSession:
        session = self._session
        if session is None or session.closed:
            connector = aiohttp.TCPConnector(
                limit=self._max_connections,
                limit_per_host=0,
                keepalive_timeout=self._keepalive_expiry,
                ttl_dns_cache=300,
            )
            session = self._session = aiohttp.ClientSession(
                connector=connector,
                trust_env=False,
                # the caller's headers only: no default User-Agent or cookies kept
                cookie_jar=aiohttp.DummyCookieJar(),
            )
        return session

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> UpstreamClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def _headers(self, dialect: Dialect, api_key: Secret | None) -> dict[str, str]:
        """The request headers for a call without extra headers (built once per key)."""
        cache_key = (dialect, id(api_key))
        cached = self._header_cache.get(cache_key)
        if cached is None or cached[0] is not api_key:
            hdrs = stream_headers(dialect, api_key)
            cached = (api_key, hdrs)
            if len(self._header_cache) < 256:
                self._header_cache[cache_key] = cached
        return cached[1]

    def _timeout(self, deadlines: Deadlines) -> aiohttp.ClientTimeout:
        # connect covers waiting for a pooled connection and the TCP handshake; reads are
        # bounded around each read by the first-token, idle and total deadlines
        connect = deadlines.connect
        timeout = self._timeouts.get(connect)
        if timeout is None:
            timeout = aiohttp.ClientTimeout(total=None, connect=connect, sock_read=None)
            if len(self._timeouts) < 64:
                self._timeouts[connect] = timeout
        return timeout

    async def _send(
        self,
        dialect: Dialect,
        base_url: str,
        body: Mapping[str, Any],
        deadlines: Deadlines,
        api_key: Secret | None,
        headers: Mapping[str, str] | None,
        *,
        started: float,
        where: str,
    ) -> aiohttp.ClientResponse:
        """Send and wait for response headers within the first-token and total deadlines."""
        try:
            content = orjson.dumps(body)
        except TypeError:  # what orjson refuses (integers beyond 64 bits, ...)
            content = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
        hdrs = (
            stream_headers(dialect, api_key, headers)
            if headers
            else self._headers(dialect, api_key)
        )
        budget = min(deadlines.first_token, deadlines.total)
        phase = (
            "timeout_first_token" if deadlines.first_token <= deadlines.total else "timeout_total"
        )
        try:
            async with asyncio.timeout_at(started + budget):
                return await self._http().request(
                    "POST",
                    endpoint_url(dialect, base_url),
                    data=content,
                    headers=hdrs,
                    timeout=self._timeout(deadlines),
                    allow_redirects=False,
                )
        except aiohttp.ConnectionTimeoutError as exc:
            raise UpstreamError(
                f"{where}: no connection within the connect deadline",
                status=504,
                retryable=True,
                reason="timeout_connect",
            ) from exc
        except TimeoutError:
            raise UpstreamError(
                f"{where}: {PHASE_TEXT[phase]}", status=504, retryable=True, reason=phase
            ) from None
        except aiohttp.ClientConnectorError as exc:
            raise UpstreamError(
                f"{where}: connection failed ({_connect_cause(exc)})",
                status=502,
                retryable=True,
                reason="connect",
            ) from exc
        except aiohttp.ClientError as exc:
            # the peer accepted and then closed (or spoke no HTTP): as good as refused
            failure = connection_failure(
                f"{where}: the connection closed before a response ({type(exc).__name__})",
                "connect",
                exc,
            )
        raise failure  # outside the except block: the aiohttp error is not even __context__

    async def _read_error(
        self, response: aiohttp.ClientResponse, deadlines: Deadlines, started: float, where: str
    ) -> UpstreamError:
        try:
            async with asyncio.timeout_at(started + deadlines.total):
                body = await response.read()
        except (TimeoutError, aiohttp.ClientError):
            body = b""
            response.close()
        finally:
            response.release()
        return status_error(response.status, body, response.headers, where=where)

    async def _open(
        self,
        dialect: Dialect,
        base_url: str,
        body: Mapping[str, Any],
        deadlines: Deadlines,
        api_key: Secret | None,
        headers: Mapping[str, str] | None,
        name: str | None,
    ) -> tuple[aiohttp.ClientResponse, float, str]:
        """Send the request; a 2xx response with its start time and label, else UpstreamError."""
        started = asyncio.get_running_loop().time()
        where = name or dialect
        response = await self._send(
            dialect,
            base_url,
            body,
            deadlines,
            api_key,
            headers,
            started=started,
            where=where,
        )
        if response.status >= 400:
            raise await self._read_error(response, deadlines, started, where)
        return response, started, where

    def open(self, request: ProviderRequest) -> AbstractAsyncContextManager[UpstreamStream]:
        """:meth:`drkit.connectors.llm.provider.Provider.open`: :meth:`stream` for one
        :class:`~drkit.connectors.llm.provider.ProviderRequest`."""
        return self.stream(
            dialect=request.dialect,
            base_url=request.base_url,
            body=request.body,
            deadlines=request.deadlines,
            api_key=request.api_key,
            headers=request.headers,
            name=request.name,
        )

    @asynccontextmanager
    async def stream(
        self,
        *,
        dialect: Dialect,
        base_url: str,
        body: Mapping[str, Any],
        deadlines: Deadlines,
        api_key: Secret | None = None,
        headers: Mapping[str, str] | None = None,
        name: str | None = None,
    ) -> AsyncIterator[UpstreamStream]:
        """Open a streaming call (``body`` must ask for ``stream: true``).

        Entering raises UpstreamError for connection failures, deadlines and error
        statuses; iterating yields events and raises for cuts, stalls and bad events.
        """
        response, started, where = await self._open(
            dialect, base_url, body, deadlines, api_key, headers, name
        )
        upstream = UpstreamStream(response, dialect, deadlines, started, where)
        try:
            yield upstream
        finally:
            if upstream.complete:
                # read the body's end so that the connection returns to the pool
                await upstream.drain()
                response.release()
            else:
                response.close()  # mid-answer: this connection cannot be reused


def _connect_cause(exc: aiohttp.ClientConnectorError) -> str:
    err = exc.os_error
    if isinstance(err, ConnectionRefusedError):
        return "connection refused"
    text = str(err).lower()
    if "name or service" in text or "nodename" in text or "resolve" in text:
        return "name resolution failed"
    return type(err).__name__
