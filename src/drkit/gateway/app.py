"""The gateway's HTTP app (Starlette): both wire dialects, health, metrics, admin.

Endpoints::

    POST /v1/chat/completions   OpenAI-compatible (streaming and not)
    POST /v1/messages           Anthropic-compatible (streaming and not)
    GET  /v1/models             the route names (authenticated)
    GET  /healthz               the process is up
    GET  /readyz                200 when every route has at least one target in service
    GET  /metrics               Prometheus text format
    GET  /admin/targets         each target's health state (authenticated)

Every answer carries ``x-drkit-target`` (who served), ``x-drkit-attempts`` and, when a
target was skipped or failed, ``x-drkit-failover-reason``.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from drkit.connectors.llm.client import UpstreamClient
from drkit.errors import AllTargetsFailed, GatewayError, TranslationError, UpstreamError
from drkit.gateway.auth import KeyCheck
from drkit.gateway.budget import RetryBudget
from drkit.gateway.config import (
    Dialect,
    GatewayConfig,
    client_key_hashes,
    resolve_api_key,
)
from drkit.gateway.dialects import encode_sse, error_body
from drkit.gateway.events import EventSink, JsonlEventSink, NullEventSink
from drkit.gateway.failover import Engine, Trace
from drkit.gateway.health import HealthBoard, TargetHealth
from drkit.gateway.metrics import GatewayMetrics
from drkit.gateway.probe import make_prober
from drkit.gateway.redact import Redactor
from drkit.gateway.translation import DefaultTranslator, Translator

log = logging.getLogger("drkit.gateway")


class Gateway:
    """Everything one gateway process holds: config, health, budget, engine, metrics."""

    def __init__(
        self,
        config: GatewayConfig,
        *,
        events: EventSink | None = None,
        translator: Translator | None = None,
        client: UpstreamClient | None = None,
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
        self.client = client or UpstreamClient()
        self.engine = Engine(
            self.client,
            translator or DefaultTranslator(),
            self.board,
            self.budget,
            self.events,
            self.metrics,
            self.keys,
            self.redactor,
        )
        self._shared: Any = None

    def _state_changed(self, h: TargetHealth) -> None:
        self.metrics.target(h, h.public(self.board.clock())["state"])

    async def start(self) -> None:
        self.board.start_probing(make_prober(self.client, self.keys, self.config))
        if self.config.redis_url:
            from drkit.gateway.redis_health import RedisHealth

            self._shared = RedisHealth(self.board, self.config.redis_url)
            await self._shared.start()

    async def stop(self) -> None:
        await self.board.stop_probing()
        if self._shared is not None:
            await self._shared.stop()
        await self.client.aclose()

    # --- handlers -----------------------------------------------------------------------

    def _error(
        self, dialect: Dialect, status: int, message: str, headers: dict[str, str] | None = None
    ) -> Response:
        return JSONResponse(
            error_body(dialect, status, self.redactor.text(message)),
            status_code=status,
            headers=headers,
        )

    def _unauthorized(self, dialect: Dialect) -> Response:
        return self._error(
            dialect,
            401,
            "missing or invalid API key: send the gateway key as Authorization: Bearer "
            "<key> or x-api-key",
        )

    async def chat(self, request: Request) -> Response:
        return await self._handle(request, "openai")

    async def messages(self, request: Request) -> Response:
        return await self._handle(request, "anthropic")

    async def _handle(self, request: Request, dialect: Dialect) -> Response:
        started = time.monotonic()
        if not self.auth.allows(request.headers):
            return self._unauthorized(dialect)
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            return self._error(dialect, 400, "the request body is not valid JSON")
        if not isinstance(body, dict):
            return self._error(dialect, 400, "the request body must be a JSON object")
        model = body.get("model")
        route = self.config.route(model) if isinstance(model, str) else None
        if route is None:
            names = ", ".join(r.name for r in self.config.routes)
            return self._error(
                dialect, 404, f"no route named {model!r}; this gateway serves: {names}"
            )
        stream = bool(body.get("stream"))
        include_usage = not stream or (
            dialect == "openai" and bool((body.get("stream_options") or {}).get("include_usage"))
        )
        trace = Trace(route.name, include_usage=include_usage)
        try:
            events = await self.engine.open(route, dialect, body, trace)
        except TranslationError as exc:
            self.metrics.request(route.name, dialect, "client_error", None)
            return self._error(dialect, 400, str(exc), trace.headers())
        except UpstreamError as exc:  # non-retryable: the upstream's 4xx, unchanged
            self.metrics.request(route.name, dialect, "client_error", None)
            target = next(t for t in route.targets if t.name == trace.target)
            if exc.body and target.provider == dialect:
                return Response(
                    self.redactor.bytes(exc.body),
                    status_code=exc.status,
                    media_type="application/json",
                    headers=trace.headers(),
                )
            return self._error(dialect, exc.status, str(exc), trace.headers())
        except AllTargetsFailed as exc:
            self.metrics.request(route.name, dialect, "failed", None)
            headers = trace.headers()
            retry_after = getattr(exc, "retry_after", None)
            if retry_after is not None:
                headers["retry-after"] = str(max(1, math.ceil(retry_after)))
            return self._error(dialect, exc.status, str(exc), headers)
        if stream:
            self.metrics.request(route.name, dialect, "ok", time.monotonic() - started)
            return StreamingResponse(
                self._sse(dialect, events, trace),
                media_type="text/event-stream",
                headers={**trace.headers(), "cache-control": "no-cache"},
            )
        try:
            async for _batch in events:
                pass  # the engine folds the events into trace.output
        except GatewayError as exc:
            self.metrics.request(route.name, dialect, "failed", None)
            return self._error(dialect, exc.status, str(exc), trace.headers())
        finally:
            await events.aclose()  # type: ignore[attr-defined]
        acc = trace.output
        if acc is None or trace.failed is not None or not acc.terminal:
            self.metrics.request(route.name, dialect, "failed", None)
            why = str(trace.failed) if trace.failed else "the answer did not complete"
            return self._error(
                dialect, 502, f"the answer was cut off and is incomplete: {why}", trace.headers()
            )
        self.metrics.request(route.name, dialect, "ok", time.monotonic() - started)
        return Response(
            orjson.dumps(acc.result()), media_type="application/json", headers=trace.headers()
        )

    async def _sse(
        self, dialect: Dialect, events: AsyncIterator[Any], trace: Trace
    ) -> AsyncIterator[bytes]:
        try:
            async for batch in events:
                yield b"".join([encode_sse(dialect, ev) for ev in batch])
        except GatewayError as exc:
            # e.g. a TranslationError on an event with no twin in the client's dialect
            from drkit.gateway.dialects import stream_error_event

            yield encode_sse(
                dialect, stream_error_event(dialect, self.redactor.text(str(exc)), "gateway_error")
            )
        finally:
            with contextlib.suppress(Exception):
                await events.aclose()  # type: ignore[attr-defined]

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
        return Response(self.metrics.render(), media_type="text/plain; version=0.0.4")

    async def admin_targets(self, request: Request) -> Response:
        if not self.auth.allows(request.headers):
            return self._unauthorized("openai")
        return JSONResponse(
            {
                "targets": self.board.snapshot(),
                "retry_budget": self.budget.snapshot(),
                "shared_state": "redis" if self.config.redis_url else "local",
            }
        )


def create_app(
    config: GatewayConfig,
    *,
    events: EventSink | None = None,
    translator: Translator | None = None,
    client: UpstreamClient | None = None,
) -> Starlette:
    """The ASGI app; ``app.state.gateway`` is the :class:`Gateway` behind it.

    Raises SecretMissing (before serving anything) when a provider key or the client
    keys are not in the environment.
    """
    gw = Gateway(config, events=events, translator=translator, client=client)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await gw.start()
        try:
            yield
        finally:
            await gw.stop()

    app = Starlette(
        routes=[
            Route("/v1/chat/completions", gw.chat, methods=["POST"]),
            Route("/v1/messages", gw.messages, methods=["POST"]),
            Route("/v1/models", gw.models, methods=["GET"]),
            Route("/healthz", gw.healthz, methods=["GET"]),
            Route("/readyz", gw.readyz, methods=["GET"]),
            Route("/metrics", gw.metrics_endpoint, methods=["GET"]),
            Route("/admin/targets", gw.admin_targets, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
    app.state.gateway = gw
    return app
