"""The two chat endpoints (``POST /v1/chat/completions``, ``POST /v1/messages``) as plain
ASGI: no Request/Response objects on the hot path.

:class:`ChatHandling` is a base of :class:`drkit.gateway.app.Gateway` (not an object of
its own) so that a request reaches the gateway's parts in one attribute lookup, as when
these methods were the gateway's own.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time

import orjson
from starlette.types import Receive, Scope, Send

from drkit.errors import (
    AllTargetsFailed,
    AuthenticationError,
    GatewayError,
    RouteNotFound,
    TranslationError,
    UpstreamError,
)
from drkit.gateway.auth import KeyCheck
from drkit.gateway.config import Dialect, GatewayConfig, RouteConfig
from drkit.gateway.dialects import error_body
from drkit.gateway.failover import Engine, Trace
from drkit.gateway.live import LiveFaults
from drkit.gateway.metrics import GatewayMetrics
from drkit.gateway.model_alias import VERSION_HEADER, AliasTable
from drkit.gateway.redact import Redactor
from drkit.gateway.replies import JSON, Reply, StreamReply
from drkit.gateway.translation_probe import TranslationProbe

log = logging.getLogger("drkit.gateway")

#: the one answer to a request without a valid client key (both dialects, every endpoint)
UNAUTHORIZED = AuthenticationError(
    "missing or invalid API key: send the gateway key as Authorization: Bearer <key> or x-api-key"
)


def _auth_headers(scope: Scope) -> dict[str, str]:
    """The two headers a client key can come in, from the raw ASGI headers (first wins)."""
    out: dict[str, str] = {}
    for name, value in scope["headers"]:
        if name == b"authorization" or name == b"x-api-key":
            out.setdefault(name.decode(), value.decode("latin-1"))
    return out


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _is_json_object(body: bytes) -> bool:
    try:
        return isinstance(orjson.loads(body), dict)
    except orjson.JSONDecodeError:
        return False


def _log_request(
    route: str | None,
    dialect: Dialect,
    status: int | str,
    headers: dict[str, str] | None,
    took: float,
) -> None:
    """One INFO line per chat request: route, target, attempts, status, latency.

    The fields are also the record's ``extra`` (``--log-format json`` shows them as keys)."""
    h = headers or {}
    fields = {
        "route": route,
        "dialect": dialect,
        "target": h.get("x-drkit-target"),
        "attempts": int(h.get("x-drkit-attempts", 0)),
        "status": status,
        "latency_ms": round(took * 1000, 1),
        "failover": h.get("x-drkit-failover-reason"),
        "model_version": h.get(VERSION_HEADER),
    }
    text = " ".join(f"{k}={v}" for k, v in fields.items() if v is not None)
    log.info("request %s", text, extra=fields)


class ChatHandling:
    """Serving one chat request: auth, body, route, the failover engine, the answer."""

    # the gateway's parts these methods use (set by Gateway.__init__)
    config: GatewayConfig
    auth: KeyCheck
    redactor: Redactor
    metrics: GatewayMetrics
    engine: Engine
    probe: TranslationProbe
    live: LiveFaults
    aliases: AliasTable | None

    def serving_route(self, name: str) -> RouteConfig | None:
        """Route ``name`` as it serves now: targets following a registry alias carry the
        upstream model it names (what requests, probes and the canary send)."""
        route = self.config.route(name)
        if route is not None and self.aliases is not None:
            route = self.aliases.route(route)
        return route

    def _error_reply(
        self, dialect: Dialect, status: int, message: str, headers: dict[str, str] | None = None
    ) -> Reply:
        body = orjson.dumps(error_body(dialect, status, self.redactor.text(message)))
        return Reply(status, JSON, body, headers)

    async def handle(self, scope: Scope, receive: Receive, send: Send, dialect: Dialect) -> None:
        """Serve one ``POST /v1/chat/completions`` or ``POST /v1/messages``."""
        started = time.monotonic()
        if not self.auth.allows(_auth_headers(scope)):  # before reading any body
            await self._gateway_error(dialect, UNAUTHORIZED).send(send)
            return
        limit = self.config.max_request_body
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await self._too_large(dialect, declared).send(send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away before sending its request
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:  # chunked, or more than it declared: stop reading here
                await self._too_large(dialect, size).send(send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        raw = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        started_response = False
        status: int | str = 500
        headers: dict[str, str] | None = None
        route_name: list[str] = []  # filled in by _answer once the route is known
        try:
            answer = await self._answer(dialect, raw, started, route_name)
            if isinstance(answer, Reply):
                started_response = True
                status, headers = answer.status, answer.headers
                await answer.send(send)
            else:
                started_response = True
                headers = answer.trace.headers()
                try:
                    await answer.send(receive, send, self.redactor)
                finally:
                    # counted once it ended: a cut stream is a failed request, not an ok one
                    outcome = answer.outcome
                    seconds = answer.opened_after if outcome == "ok" else None
                    self.metrics.request(route_name[0], dialect, outcome, seconds)
                # the status line said 200; an answer cut off after it is logged as such
                status = "200-cut" if answer.outcome == "failed" else 200
        except Exception:
            if not started_response:
                reply = self._error_reply(dialect, 500, "internal gateway error")
                await reply.send(send)
            raise
        finally:
            if self.live.by_route and route_name:
                reasons = headers.get("x-drkit-failover-reason") if headers else None
                self.live.observe(route_name[0], status, reasons, time.monotonic() - started)
            if log.isEnabledFor(logging.INFO):
                route = route_name[0] if route_name else None
                took = time.monotonic() - started
                # after the answer's last write: under drkit gateway serve, the writes of
                # this loop step go out when it ends (drkit.gateway.server), so a line
                # written now would come before the client's last bytes
                asyncio.get_running_loop().call_soon(
                    _log_request, route, dialect, status, headers, took
                )

    def _gateway_error(
        self, dialect: Dialect, exc: GatewayError, headers: dict[str, str] | None = None
    ) -> Reply:
        """A gateway error as the client's dialect shows errors (its status, its text)."""
        return self._error_reply(dialect, exc.status, str(exc), headers)

    def _too_large(self, dialect: Dialect, size: int) -> Reply:
        limit = self.config.max_request_body
        return self._error_reply(
            dialect,
            413,
            f"the request body ({size} bytes or more) is over this gateway's limit of "
            f"{limit} bytes (serving.gateway.max_request_body_mib)",
        )

    async def _answer(
        self, dialect: Dialect, raw: bytes, started: float, route_name: list[str]
    ) -> Reply | StreamReply:
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return self._error_reply(dialect, 400, "the request body is not valid JSON")
        if not isinstance(body, dict):
            return self._error_reply(dialect, 400, "the request body must be a JSON object")
        model = body.get("model")
        if not isinstance(model, str) or not model:
            names = ", ".join(r.name for r in self.config.routes)
            return self._error_reply(
                dialect,
                400,
                "the request needs `model` (a string): the name of a route; "
                f"this gateway serves: {names}",
            )
        route = self.serving_route(model)
        if route is None:
            names = ", ".join(r.name for r in self.config.routes)
            missing = RouteNotFound(f"no route named {model!r}; this gateway serves: {names}")
            return self._gateway_error(dialect, missing)
        route_name.append(route.name)
        self.probe.observe(route, dialect, body)
        stream = bool(body.get("stream"))
        include_usage = not stream or (
            dialect == "openai" and bool((body.get("stream_options") or {}).get("include_usage"))
        )
        trace = Trace(route.name, include_usage=include_usage, streaming=stream)
        if self.aliases is not None:
            trace.model_versions = self.aliases.versions
        metrics = self.metrics
        try:
            events = await self.engine.open(route, dialect, body, trace)
        except TranslationError as exc:
            metrics.request(route.name, dialect, "client_error", None)
            return self._error_reply(dialect, 400, str(exc), trace.headers())
        except UpstreamError as exc:  # non-retryable: the upstream's 4xx, unchanged
            metrics.request(route.name, dialect, "client_error", None)
            target = next(t for t in route.targets if t.name == trace.target)
            if exc.body and target.provider == dialect and _is_json_object(exc.body):
                return Reply(exc.status, JSON, self.redactor.bytes(exc.body), trace.headers())
            # a body that is not JSON (an HTML page from a proxy) is not passed off as
            # JSON: the client gets the dialect's error object with its first words
            return self._error_reply(dialect, exc.status, str(exc), trace.headers())
        except AllTargetsFailed as exc:
            metrics.request(route.name, dialect, "failed", None)
            headers = trace.headers()
            if exc.retry_after is not None:
                headers["retry-after"] = str(max(1, math.ceil(exc.retry_after)))
            return self._error_reply(dialect, exc.status, str(exc), headers)
        if stream:  # counted when it ends (handle)
            return StreamReply(dialect, events, trace, time.monotonic() - started)
        try:
            async for _batch in events:
                pass  # the engine folds the events into trace.output
        except GatewayError as exc:
            metrics.request(route.name, dialect, "failed", None)
            return self._error_reply(dialect, exc.status, str(exc), trace.headers())
        finally:
            await events.aclose()  # type: ignore[attr-defined]
        acc = trace.output
        if acc is None or trace.failed is not None or not acc.terminal:
            metrics.request(route.name, dialect, "failed", None)
            why = str(trace.failed) if trace.failed else "the answer did not complete"
            return self._error_reply(
                dialect, 502, f"the answer was cut off and is incomplete: {why}", trace.headers()
            )
        metrics.request(route.name, dialect, "ok", time.monotonic() - started)
        return Reply(200, JSON, orjson.dumps(acc.result()), trace.headers())
