"""The gateway's HTTP app (Starlette): both wire dialects, health, metrics, admin.

Endpoints::

    POST /v1/chat/completions   OpenAI-compatible (streaming and not)
    POST /v1/messages           Anthropic-compatible (streaming and not)
    GET  /v1/models             the route names (authenticated)
    GET  /healthz               the process is up
    GET  /readyz                200 when every route has at least one target in service
    GET  /metrics               Prometheus text format
    GET  /admin/targets         each target's health state and live fault (authenticated)
    *    /admin/live-faults     live drill faults (admin key; drkit.gateway.live)

Every answer carries ``x-drkit-target`` (who served), ``x-drkit-attempts`` and, when a
target was skipped or failed, ``x-drkit-failover-reason``; a target that follows a registry
alias (``@MODEL:ALIAS``, :mod:`drkit.gateway.model_alias`) adds ``x-drkit-model-version``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from drkit.connectors.llm.client import UpstreamClient
from drkit.connectors.llm.provider import Provider
from drkit.errors import (
    AllTargetsFailed,
    AuthenticationError,
    GatewayError,
    RouteNotFound,
    TranslationError,
    UpstreamError,
)
from drkit.gateway.auth import KeyCheck
from drkit.gateway.budget import RetryBudget
from drkit.gateway.canary import QualityCanary
from drkit.gateway.config import (
    Dialect,
    GatewayConfig,
    RouteConfig,
    client_key_hashes,
    resolve_api_key,
)
from drkit.gateway.dialects import encode_sse, error_body, is_terminal, stream_error_event
from drkit.gateway.events import EventSink, JsonlEventSink, NullEventSink
from drkit.gateway.failover import Engine, Trace
from drkit.gateway.health import HealthBoard, TargetHealth
from drkit.gateway.live import LiveFaults
from drkit.gateway.live_api import routes as live_routes
from drkit.gateway.metrics import GatewayMetrics
from drkit.gateway.model_alias import VERSION_HEADER, AliasTable, ModelResolver
from drkit.gateway.probe import make_prober
from drkit.gateway.redact import Redactor
from drkit.gateway.status_feeds import StatusFeeds
from drkit.gateway.translation import DefaultTranslator, Translator
from drkit.gateway.translation_probe import TranslationProbe

log = logging.getLogger("drkit.gateway")

#: the one answer to a request without a valid client key (both dialects, every endpoint)
_UNAUTHORIZED = AuthenticationError(
    "missing or invalid API key: send the gateway key as Authorization: Bearer <key> or x-api-key"
)

_JSON = b"application/json"
_SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
]
#: the two chat endpoints, served without Starlette's routing and middleware layers
CHAT_PATHS: dict[str, Dialect] = {"/v1/chat/completions": "openai", "/v1/messages": "anthropic"}


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


def _raw_headers(headers: dict[str, str] | None) -> list[tuple[bytes, bytes]]:
    if not headers:
        return []
    return [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]


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


class _Reply:
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
        raw = _raw_headers(self.headers)
        raw.append((b"content-type", self.media_type))
        raw.append((b"content-length", str(len(self.body)).encode()))
        await send({"type": "http.response.start", "status": self.status, "headers": raw})
        await send({"type": "http.response.body", "body": self.body})


class _SSE:
    """A streaming answer: the engine's event batches written as SSE as they come.

    A client that disconnects cancels the stream (and with it the upstream attempt): the
    ASGI server does not raise on writes to a closed connection, so a watcher waits for
    ``http.disconnect`` next to the stream.
    """

    __slots__ = ("dialect", "events", "trace")

    def __init__(self, dialect: Dialect, events: AsyncIterator[Any], trace: Trace) -> None:
        self.dialect = dialect
        self.events = events
        self.trace = trace

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
        headers = _raw_headers(self.trace.headers())
        headers.extend(_SSE_HEADERS)
        ended = False
        try:
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            try:
                async for batch in self.events:
                    if ended or not batch:
                        continue  # nothing follows the final event
                    if len(batch) == 1:
                        data = encode_sse(dialect, batch[0])
                    else:
                        data = b"".join([encode_sse(dialect, ev) for ev in batch])
                    # the final event ends the response in the same write
                    ended = is_terminal(dialect, batch[-1])
                    message: Message = {"type": "http.response.body", "body": data}
                    if not ended:
                        message["more_body"] = True
                    await send(message)
            except GatewayError as exc:
                # e.g. a TranslationError on an event with no twin in the client's dialect
                if not ended:
                    error = stream_error_event(dialect, redactor.text(str(exc)), "gateway_error")
                    ended = True
                    await send({"type": "http.response.body", "body": encode_sse(dialect, error)})
            if not ended:
                await send({"type": "http.response.body", "body": b""})
            state["finished"] = True
        except asyncio.CancelledError:
            if not state["gone"]:
                raise
            task.uncancel()  # the client went away: the stream ends here, quietly
        finally:
            state["finished"] = True
            watcher.cancel()
            with contextlib.suppress(Exception):
                await self.events.aclose()  # type: ignore[attr-defined]


class Gateway:
    """Everything one gateway process holds: config, health, budget, engine, metrics."""

    def __init__(
        self,
        config: GatewayConfig,
        *,
        events: EventSink | None = None,
        translator: Translator | None = None,
        provider: Provider | None = None,
        canary: QualityCanary | None = None,
        resolver: ModelResolver | None = None,
    ) -> None:
        self.config = config
        if events is None:
            events = JsonlEventSink(config.events_path) if config.events_path else NullEventSink()
        self.events = events
        self.keys = {t.name: resolve_api_key(t) for r in config.routes for t in r.targets}
        self.auth = KeyCheck(client_key_hashes(config), disabled=config.auth_disabled)
        self.redactor = Redactor(list(self.keys.values()) + list(config.client_keys))
        self.metrics = GatewayMetrics()
        self.board = HealthBoard(
            (t for r in config.routes for t in r.targets), config.health, events
        )
        self.board.on_change = self._state_changed
        for h in self.board.health.values():
            self.metrics.target(h, "healthy")
        policy = config.health
        self.budget = RetryBudget(
            policy.retry_budget_ratio, policy.retry_budget_min, policy.retry_budget_window
        )
        #: every upstream call goes through this (the pooled HTTP client unless given)
        self.provider: Provider = provider or UpstreamClient()
        self.engine = Engine(
            self.provider,
            translator=translator or DefaultTranslator(),
            board=self.board,
            budget=self.budget,
            events=self.events,
            metrics=self.metrics,
            keys=self.keys,
            redactor=self.redactor,
        )
        #: samples requests for what other-dialect targets would refuse
        self.probe = TranslationProbe(
            self.engine.translator,
            self.events,
            self.metrics,
            share=config.translation_probe,
            window=config.translation_probe_window,
        )
        self._shared: Any = None
        #: live drill faults and their dead-man timer (drkit.gateway.live)
        self.live = self.engine.live = LiveFaults(config, self.board, self.events)
        self._shared_live: Any = None
        #: targets that follow a registry alias (None when no target names one)
        self.aliases = AliasTable.for_routes(config.routes, resolver, self.events)
        self.feeds = StatusFeeds(config.status_feeds, self.board.demoted, events)
        self.canary = canary
        if canary is not None:
            canary.attach(self)
        self.live.held = self._quality_held

    def _quality_held(self, target: str) -> bool:
        hold = self.engine.quality_hold
        return hold is not None and hold(target)

    def serving_route(self, name: str) -> RouteConfig | None:
        """Route ``name`` as it serves now: targets following a registry alias carry the
        upstream model it names (what requests, probes and the canary send)."""
        route = self.config.route(name)
        if route is not None and self.aliases is not None:
            route = self.aliases.route(route)
        return route

    def _state_changed(self, h: TargetHealth) -> None:
        self.metrics.target(h, h.public(self.board.clock())["state"])

    async def start(self) -> None:
        prober = make_prober(self.provider, self.keys, self.config)
        if self.aliases is not None:
            prober = self.aliases.prober(prober)
            self.aliases.start()
        self.board.start_probing(prober)
        self.feeds.start()
        if self.config.redis_url:
            from drkit.gateway.redis_health import RedisHealth

            self._shared = RedisHealth(self.board, self.config.redis_url)
            await self._shared.start()
            from drkit.gateway.redis_live import RedisLive

            self._shared_live = RedisLive(self.live, self.config.redis_url)
            await self._shared_live.start()
        self.live.start()
        if self.canary is not None:
            await self.canary.start()

    async def stop(self) -> None:
        await self.live.stop()
        if self._shared_live is not None:
            await self._shared_live.stop()
        if self.canary is not None:
            await self.canary.stop()
        await self.board.stop_probing()
        if self.aliases is not None:
            await self.aliases.stop()
        await self.feeds.stop()
        if self._shared is not None:
            await self._shared.stop()
        await self.provider.aclose()

    # --- the two chat endpoints: plain ASGI (no Request/Response objects on the hot path)

    def _error_reply(
        self, dialect: Dialect, status: int, message: str, headers: dict[str, str] | None = None
    ) -> _Reply:
        body = orjson.dumps(error_body(dialect, status, self.redactor.text(message)))
        return _Reply(status, _JSON, body, headers)

    async def handle(self, scope: Scope, receive: Receive, send: Send, dialect: Dialect) -> None:
        """Serve one ``POST /v1/chat/completions`` or ``POST /v1/messages``."""
        started = time.monotonic()
        if not self.auth.allows(_auth_headers(scope)):  # before reading any body
            await self._gateway_error(dialect, _UNAUTHORIZED).send(send)
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
            if isinstance(answer, _Reply):
                started_response = True
                status, headers = answer.status, answer.headers
                await answer.send(send)
            else:
                started_response = True
                headers = answer.trace.headers()
                await answer.send(receive, send, self.redactor)
                # the status line said 200; an answer cut off after it is logged as such
                status = "200-cut" if answer.trace.failed is not None else 200
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
                _log_request(route, dialect, status, headers, time.monotonic() - started)

    def _gateway_error(
        self, dialect: Dialect, exc: GatewayError, headers: dict[str, str] | None = None
    ) -> _Reply:
        """A gateway error as the client's dialect shows errors (its status, its text)."""
        return self._error_reply(dialect, exc.status, str(exc), headers)

    def _too_large(self, dialect: Dialect, size: int) -> _Reply:
        limit = self.config.max_request_body
        return self._error_reply(
            dialect,
            413,
            f"the request body ({size} bytes or more) is over this gateway's limit of "
            f"{limit} bytes (serving.gateway.max_request_body_mib)",
        )

    async def _answer(
        self, dialect: Dialect, raw: bytes, started: float, route_name: list[str]
    ) -> _Reply | _SSE:
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return self._error_reply(dialect, 400, "the request body is not valid JSON")
        if not isinstance(body, dict):
            return self._error_reply(dialect, 400, "the request body must be a JSON object")
        model = body.get("model")
        names = ", ".join(r.name for r in self.config.routes)
        if not isinstance(model, str) or not model:
            return self._error_reply(
                dialect,
                400,
                "the request needs `model` (a string): the name of a route; "
                f"this gateway serves: {names}",
            )
        route = self.serving_route(model)
        if route is None:
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
                return _Reply(exc.status, _JSON, self.redactor.bytes(exc.body), trace.headers())
            # a body that is not JSON (an HTML page from a proxy) is not passed off as
            # JSON: the client gets the dialect's error object with its first words
            return self._error_reply(dialect, exc.status, str(exc), trace.headers())
        except AllTargetsFailed as exc:
            metrics.request(route.name, dialect, "failed", None)
            headers = trace.headers()
            if exc.retry_after is not None:
                headers["retry-after"] = str(max(1, math.ceil(exc.retry_after)))
            return self._error_reply(dialect, exc.status, str(exc), headers)
        if stream:
            metrics.request(route.name, dialect, "ok", time.monotonic() - started)
            return _SSE(dialect, events, trace)
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
        return _Reply(200, _JSON, orjson.dumps(acc.result()), trace.headers())

    def _unauthorized(self, dialect: Dialect) -> Response:
        return JSONResponse(
            error_body(dialect, _UNAUTHORIZED.status, str(_UNAUTHORIZED)),
            status_code=_UNAUTHORIZED.status,
        )

    async def models(self, request: Request) -> Response:
        if not self.auth.allows(request.headers):
            return self._unauthorized("openai")
        data = [
            {
                "id": r.name,
                "object": "model",
                "type": "model",
                "created": 0,
                "created_at": "1970-01-01T00:00:00Z",
                "display_name": r.name,
                "owned_by": "drkit",
            }
            for r in self.config.routes
        ]
        return JSONResponse(
            {
                "object": "list",
                "data": data,
                "has_more": False,
                "first_id": data[0]["id"] if data else None,
                "last_id": data[-1]["id"] if data else None,
            }
        )

    async def healthz(self, request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(self, request: Request) -> Response:
        routes = {
            r.name: [t.name for t in r.targets if self.board.is_available(t.name)]
            for r in self.config.routes
        }
        ready = all(routes.values())
        return JSONResponse({"ready": ready, "routes": routes}, status_code=200 if ready else 503)

    async def metrics_endpoint(self, request: Request) -> Response:
        for name in self.board.health:
            self.metrics.target_demoted(name, name in self.board.demoted)
        return Response(self.metrics.render(), media_type="text/plain; version=0.0.4")

    async def admin_targets(self, request: Request) -> Response:
        if not (self.auth.allows(request.headers) or self.live.admin.allows(request.headers)):
            return self._unauthorized("openai")
        targets = self.board.snapshot()
        faults = list(self.live.by_route.values())
        for t in targets:  # a live drill's fault shows on the targets it fails, whose it is
            t["live_fault"] = next(
                (
                    {"drill": f.drill, "owner": f.owner, "route": f.route, "fraction": f.fraction}
                    for f in faults
                    if t["name"] in f.targets
                ),
                None,
            )
        return JSONResponse(
            {
                "targets": targets,
                "live_faults": [f.public(self.live.clock()) for f in faults],
                "retry_budget": self.budget.snapshot(),
                "shared_state": "redis" if self.config.redis_url else "local",
                "status_feeds": self.feeds.snapshot(),
                "quality": self.canary.snapshot() if self.canary is not None else [],
            }
        )


class _ChatEndpoint:
    """A chat endpoint as a Starlette route (when the fast dispatch did not take it)."""

    def __init__(self, gateway: Gateway, dialect: Dialect) -> None:
        self.gateway = gateway
        self.dialect: Dialect = dialect

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.gateway.handle(scope, receive, send, self.dialect)


class GatewayApp:
    """The ASGI app: ``POST`` to the two chat endpoints goes straight to the gateway;
    everything else (and lifespan) to the Starlette app behind it."""

    def __init__(self, gateway: Gateway, app: Starlette) -> None:
        self.gateway = gateway
        self.app = app
        self.state = app.state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            dialect = CHAT_PATHS.get(scope["path"])
            if dialect is not None:
                await self.gateway.handle(scope, receive, send, dialect)
                return
        await self.app(scope, receive, send)


def create_app(
    config: GatewayConfig,
    *,
    events: EventSink | None = None,
    translator: Translator | None = None,
    provider: Provider | None = None,
    canary: QualityCanary | None = None,
    resolver: ModelResolver | None = None,
) -> GatewayApp:
    """The ASGI app; ``app.state.gateway`` is the :class:`Gateway` behind it.


    Raises SecretMissing (before serving anything) when a provider key or the client
    keys are not in the environment, and PlanError when a target names a registry alias
    (``@MODEL:ALIAS``) that ``resolver`` cannot resolve.
    """
    gw = Gateway(
        config,
        events=events,
        translator=translator,
        provider=provider,
        canary=canary,
        resolver=resolver,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await gw.start()
        try:
            yield
        finally:
            await gw.stop()

    app = Starlette(
        routes=[
            Route("/v1/chat/completions", _ChatEndpoint(gw, "openai"), methods=["POST"]),
            Route("/v1/messages", _ChatEndpoint(gw, "anthropic"), methods=["POST"]),
            Route("/v1/models", gw.models, methods=["GET"]),
            Route("/healthz", gw.healthz, methods=["GET"]),
            Route("/readyz", gw.readyz, methods=["GET"]),
            Route("/metrics", gw.metrics_endpoint, methods=["GET"]),
            Route("/admin/targets", gw.admin_targets, methods=["GET"]),
            *live_routes(gw.live),
        ],
        lifespan=lifespan,
    )
    app.state.gateway = gw
    return GatewayApp(gw, app)
