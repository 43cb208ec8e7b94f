"""The gateway's HTTP app (Starlette): both wire dialects, health, metrics, admin.

Endpoints::

    POST /v1/chat/completions   OpenAI-compatible (streaming and not; drkit.gateway.chat)
    POST /v1/messages           Anthropic-compatible (streaming and not; drkit.gateway.chat)
    GET  /v1/models             the route names (authenticated; drkit.gateway.admin)
    GET  /healthz               the process is up
    GET  /readyz                200 when every route has at least one target in service
    GET  /metrics               Prometheus text format
    GET  /admin/targets         each target's health state and live fault (authenticated)
    *    /admin/live-faults     live drill faults (admin key; drkit.gateway.live)

Every answer carries ``x-drkit-target`` (who served), ``x-drkit-attempts`` and, when a
target was skipped or failed, ``x-drkit-failover-reason``; a target that follows a registry
alias (``@MODEL:ALIAS``, :mod:`drkit.gateway.model_alias`) adds ``x-drkit-model-version``.

This module assembles: :class:`Gateway` (what one process holds, its start and stop),
the ASGI app in front of it and :func:`create_app`. A request is served by
:mod:`drkit.gateway.chat` and answered through :mod:`drkit.gateway.replies`.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from drkit.connectors.llm.client import UpstreamClient
from drkit.connectors.llm.provider import Provider
from drkit.gateway.admin import AdminEndpoints
from drkit.gateway.auth import KeyCheck
from drkit.gateway.budget import RetryBudget
from drkit.gateway.canary import QualityCanary
from drkit.gateway.chat import ChatHandling
from drkit.gateway.config import (
    Dialect,
    GatewayConfig,
    client_key_hashes,
    resolve_api_key,
)
from drkit.gateway.events import EventSink, JsonlEventSink, NullEventSink
from drkit.gateway.failover import Engine
from drkit.gateway.health import HealthBoard, TargetHealth
from drkit.gateway.live import LiveFaults
from drkit.gateway.live_api import routes as live_routes
from drkit.gateway.metrics import GatewayMetrics
from drkit.gateway.model_alias import AliasTable, ModelResolver
from drkit.gateway.probe import make_prober
from drkit.gateway.redact import Redactor
from drkit.gateway.status_feeds import StatusFeeds
from drkit.gateway.translation import DefaultTranslator, Translator
from drkit.gateway.translation_probe import TranslationProbe

#: the two chat endpoints, served without Starlette's routing and middleware layers
CHAT_PATHS: dict[str, Dialect] = {"/v1/chat/completions": "openai", "/v1/messages": "anthropic"}


class Gateway(ChatHandling):
    """Everything one gateway process holds: config, health, budget, engine, metrics.

    Its chat requests are :class:`~drkit.gateway.chat.ChatHandling`'s methods."""

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
            *AdminEndpoints(gw).routes(),
            *live_routes(gw.live),
        ],
        lifespan=lifespan,
    )
    app.state.gateway = gw
    return GatewayApp(gw, app)
