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
import contextlib
import email.utils
import json
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Any

import aiohttp
import orjson

from drkit.connectors.llm.deadlines import Deadlines as Deadlines  # re-exported
from drkit.connectors.llm.error_types import ANTHROPIC_STATUS, OPENAI_ERRORS
from drkit.connectors.llm.sse import (
    DONE,
    Dialect,
    SSEEvent,
    SSEParser,
    error_payload,
    is_content,
    is_terminal,
)
from drkit.errors import UpstreamError
from drkit.types import Secret

if TYPE_CHECKING:
    from drkit.connectors.llm.provider import ProviderRequest

#: Every ``UpstreamError.reason`` this module produces.
REASONS = (
    "connect",
    "timeout_connect",
    "timeout_first_token",
    "timeout_idle",
    "timeout_total",
    "status_429",
    "status_5xx",
    "status_4xx",
    "upstream_auth",
    "model_not_found",
    "stream_cut",
    "malformed",
)

#: The Anthropic API version sent when the caller does not set one.
ANTHROPIC_VERSION = "2023-06-01"

#: Upstream error bodies kept on the error (for 4xx returned to the client), at most.
MAX_ERROR_BODY = 64 * 1024


def endpoint_url(dialect: Dialect, base_url: str) -> str:
    """The chat endpoint for a base URL, following each official SDK's convention.

    OpenAI base URLs include the version (``https://api.openai.com/v1``); Anthropic's do
    not (``https://api.anthropic.com``).
    """
    base = base_url.rstrip("/")
    if dialect == "openai":
        return base + "/chat/completions"
    return base + "/v1/messages"


def request_headers(
    dialect: Dialect, api_key: Secret | None, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Auth and protocol headers for one request (the key revealed only here)."""
    headers = {"content-type": "application/json", "accept": "application/json"}
    if dialect == "anthropic":
        headers["anthropic-version"] = ANTHROPIC_VERSION
        if api_key:
            # the classic header; Anthropic's SDK 2.x sends the same key as a bearer token
            headers["x-api-key"] = api_key.reveal()
    elif api_key:
        headers["authorization"] = "Bearer " + api_key.reveal()
    if extra:
        headers.update(extra)
    return headers


def stream_headers(
    dialect: Dialect, api_key: Secret | None, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """:func:`request_headers` for a streaming call (``accept: text/event-stream``)."""
    headers = request_headers(dialect, api_key, extra)
    headers["accept"] = "text/event-stream"
    return headers


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds from ``retry-after-ms``, ``retry-after`` (seconds or an HTTP date), or None."""
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def status_error(
    status: int, body: bytes, headers: Mapping[str, str], *, where: str
) -> UpstreamError:
    """Classify an error status: 429 and 5xx (incl. 529) are retryable, other 4xx not --
    except 401/403 (``upstream_auth``) and 404 (``model_not_found``): the caller built
    that request with its own key and its own model name, so those say the target is
    misconfigured (a revoked key, a retired model), not that the client's request is bad."""
    snippet = _error_message(body)
    message = f"{where} answered HTTP {status}" + (f": {snippet}" if snippet else "")
    if status == 429:
        return UpstreamError(
            message,
            status=429,
            retryable=True,
            reason="status_429",
            retry_after=parse_retry_after(headers),
            body=body[:MAX_ERROR_BODY],
        )
    if status in (401, 403, 404):
        return UpstreamError(
            message,
            status=status,
            retryable=True,
            reason="model_not_found" if status == 404 else "upstream_auth",
            body=body[:MAX_ERROR_BODY],
        )
    if status >= 500:
        return UpstreamError(
            message, status=status, retryable=True, reason="status_5xx", body=body[:MAX_ERROR_BODY]
        )
    return UpstreamError(
        message, status=status, retryable=False, reason="status_4xx", body=body[:MAX_ERROR_BODY]
    )


def _error_message(body: bytes) -> str:
    """The provider's error message from a JSON error body (either dialect), shortened."""
    try:
        payload = json.loads(body)
    except ValueError:
        return body[:200].decode("utf-8", errors="replace").strip()
    err = payload.get("error") if isinstance(payload, dict) else None
    if isinstance(err, dict):
        return str(err.get("message") or err.get("type") or "")[:200]
    return str(err or "")[:200]


#: in-stream error type (or OpenAI code) -> status: Anthropic's table plus OpenAI's names
#: that say one status (``invalid_request_error`` is any 4xx for OpenAI: Anthropic's 400)
_STREAM_ERROR_STATUS = {
    **ANTHROPIC_STATUS,
    **{
        name: status
        for status, names in OPENAI_ERRORS.items()
        for name in names
        if name and name != "invalid_request_error"
    },
}


def stream_error(err: Mapping[str, Any], where: str) -> UpstreamError:
    """An error event inside a 200 stream (Anthropic ``event: error``, OpenAI ``{"error"}``)."""
    code = err.get("code")
    # OpenAI's code is the precise one (type invalid_request_error, code invalid_api_key)
    kind = str(code if code in _STREAM_ERROR_STATUS else err.get("type") or code or "error")
    message = f"{where} sent an error event mid-stream: {kind}: {err.get('message', '')}"[:300]
    status = _STREAM_ERROR_STATUS.get(kind, 500)
    body = json.dumps({"type": "error", "error": dict(err)}).encode()
    return (
        status_error(status, body, {}, where=where)
        if status < 500
        else UpstreamError(message, status=status, retryable=True, reason="status_5xx", body=body)
    )


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
                            chunk = await read()
                    except TimeoutError:
                        raise UpstreamError(
                            f"{where}: {_PHASE_TEXT[phase]}",
                            status=504,
                            retryable=True,
                            reason=phase,
                        ) from None
            except aiohttp.ClientError as exc:
                failure = _failure(
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
            for ev in parser.feed(chunk):
                if self._check(ev, loop):
                    yield ev
                    self.complete = True
                    return
                yield ev

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


_PHASE_TEXT = {
    "timeout_first_token": "no first token before the first-token deadline",
    "timeout_idle": "the stream stalled past the idle deadline",
    "timeout_total": "the attempt ran past the total deadline",
}


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
                f"{where}: {_PHASE_TEXT[phase]}", status=504, retryable=True, reason=phase
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
            failure = _failure(
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


def _failure(message: str, reason: str, exc: aiohttp.ClientError) -> UpstreamError:
    """A retryable 502 caused by ``exc`` -- chained unless it carries the API key.

    ``ClientResponseError`` holds ``request_info`` with the request headers and its repr
    prints them, so it is neither ``__cause__`` nor (callers raise outside their
    ``except`` block) ``__context__``: no traceback or log can show the key.
    """
    failure = UpstreamError(message, status=502, retryable=True, reason=reason)
    if not isinstance(exc, aiohttp.ClientResponseError):
        failure.__cause__ = exc
    return failure


def _connect_cause(exc: aiohttp.ClientConnectorError) -> str:
    err = exc.os_error
    if isinstance(err, ConnectionRefusedError):
        return "connection refused"
    text = str(err).lower()
    if "name or service" in text or "nodename" in text or "resolve" in text:
        return "name resolution failed"
    return type(err).__name__
