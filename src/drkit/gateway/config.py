"""The gateway's runtime configuration: routes, targets, deadlines, health policy.

Plain frozen dataclasses (read on the hot path), built from the plan's ``serving``
models by :func:`from_plan` (or :func:`from_mapping` for a ``serving`` dict in the plan's
shape, which the plan's models validate: fields, defaults and constraints are defined
once, in :mod:`drkit.plan.models`).
Secrets are never stored here: a target names the environment variable holding its key
and :func:`resolve_api_key` reads it at the last moment.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from pydantic import ValidationError

from drkit.connectors.llm.deadlines import Deadlines as Deadlines  # re-exported: one definition
from drkit.connectors.llm.sse import Dialect as Dialect  # re-exported: one definition
from drkit.errors import PlanError, SecretMissing
from drkit.gateway.status_feeds import StatusFeedConfig
from drkit.plan.models import GatewaySettings, Plan, Route, Serving, Target
from drkit.types import Secret

StreamFailureMode = Literal["error", "continue"]
DIALECTS: tuple[Dialect, ...] = ("openai", "anthropic")
#: Anthropic's own limit for the Messages API: anything a provider accepts gets through
DEFAULT_MAX_REQUEST_BODY = 32 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class TargetConfig:
    """One upstream: a provider dialect at a base URL serving one model."""

    name: str
    provider: Dialect
    model: str
    base_url: str
    api_key_env: str | None = None
    #: a key given inline in the plan (masked type); ``api_key_env`` is the usual way
    api_key: Secret | None = field(default=None, repr=False, compare=False)
    region: str | None = None
    system_prompt: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RouteConfig:
    """What a client asks for (``model``) and the ordered targets that serve it."""

    name: str
    targets: tuple[TargetConfig, ...]
    deadlines: Deadlines = field(default_factory=Deadlines)
    on_stream_failure: StreamFailureMode = "error"
    tier: str | None = None


_PLAN_GATEWAY = GatewaySettings()
#: the first probe of an ejected target comes this soon (then backs off to probe_every)
_FIRST_PROBE = 0.5


@dataclass(frozen=True, slots=True)
class HealthPolicy:
    """Cross-request health: ejection, probing and the retry budget.

    Defaults are the plan's (``serving.gateway``), so a policy built by hand and one built
    from a plan that leaves them out agree.
    """

    #: consecutive failed attempts (5xx, 429, malformed) before a target is ejected;
    #: connection errors and timeouts eject at once (a black hole must cost one deadline).
    eject_after: int = _PLAN_GATEWAY.health.eject_after
    #: first ejection lasts this long, doubling per consecutive ejection up to the max.
    base_ejection: float = _PLAN_GATEWAY.health.eject_for
    max_ejection: float = 60.0
    #: probes of an ejected target start this often and back off to the max interval;
    #: the max bounds how long a recovered primary waits before traffic returns.
    probe_interval: float = _FIRST_PROBE
    max_probe_interval: float = _PLAN_GATEWAY.health.probe_every
    #: outer bound on one probe; each probe also has the target's route deadlines
    probe_timeout: float = 30.0
    #: retries may be at most ``ratio`` of requests over ``window`` seconds, plus ``min``.
    retry_budget_ratio: float = _PLAN_GATEWAY.retry_budget
    retry_budget_min: int = 10
    retry_budget_window: float = 10.0


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    routes: tuple[RouteConfig, ...]
    #: names of the env var holding comma-separated client keys; None with auth_disabled.
    client_keys_env: str | None = "DRKIT_GATEWAY_KEYS"
    #: keys given inline in the plan (in addition to the env var's)
    client_keys: tuple[Secret, ...] = field(default=(), repr=False)
    auth_disabled: bool = False
    health: HealthPolicy = HealthPolicy()
    #: ``redis://127.0.0.1:6379/0`` to share target health between gateway processes.
    redis_url: str | None = None
    #: JSONL file where failovers, ejections and recoveries are appended.
    events_path: str | None = None
    #: request bodies above this many bytes get a 413 before they are read or parsed
    max_request_body: int = DEFAULT_MAX_REQUEST_BODY
    #: env var with the admin keys of the live-fault API (:mod:`drkit.gateway.live`)
    admin_keys_env: str | None = "DRKIT_GATEWAY_ADMIN_KEYS"
    #: the plan's testing.live_limits, enforced by the gateway too
    live_max_fraction: float = 0.1
    live_max_duration: float = 3600.0
    #: providers' status feeds to poll (drkit.gateway.status_feeds; the plan's providers)
    status_feeds: tuple[StatusFeedConfig, ...] = ()
    #: share of requests the translation probe samples, and its dedup window (seconds)
    translation_probe: float = _PLAN_GATEWAY.translation_probe
    translation_probe_window: float = _PLAN_GATEWAY.translation_probe_window

    def route(self, name: str) -> RouteConfig | None:
        for route in self.routes:
            if route.name == name:
                return route
        return None


def resolve_api_key(target: TargetConfig) -> Secret | None:
    """The provider key for ``target``: inline, else its env var (None when it names none)."""
    if target.api_key is not None:
        return target.api_key
    if not target.api_key_env:
        return None
    value = os.environ.get(target.api_key_env)
    if not value:
        raise SecretMissing(
            f"target {target.name!r}: environment variable {target.api_key_env} is not set",
            hint=f"export {target.api_key_env}=<the provider API key>",
        )
    return Secret(value)


def client_key_hashes(config: GatewayConfig) -> frozenset[bytes]:
    """sha256 digests of the client keys (the raw keys are not kept)."""
    import hashlib

    if config.auth_disabled:
        return frozenset()
    env = config.client_keys_env
    raw = os.environ.get(env, "") if env else ""
    keys = [k.strip() for k in raw.split(",") if k.strip()]
    keys += [k.reveal() for k in config.client_keys if k.reveal()]
    if not keys:
        where = f"environment variable {env} holds none" if env else "none are configured"
        raise SecretMissing(
            f"gateway auth is on but {where} (serving.auth)",
            hint=f"export {env or 'DRKIT_GATEWAY_KEYS'}=key1,key2, or set "
            "serving.auth.disabled: true in the plan",
        )
    return frozenset(hashlib.sha256(k.encode()).digest() for k in keys)


# --- building from the plan's models ---------------------------------------------------


def _target(t: Target) -> TargetConfig:
    return TargetConfig(
        name=t.name,
        provider=t.provider,
        model=t.model,
        base_url=str(t.base_url).rstrip("/"),
        api_key_env=t.api_key_env,
        api_key=t.api_key,
        region=t.region,
        system_prompt=t.system_prompt,
        params=dict(t.params),
    )


def _route(r: Route, where: str) -> RouteConfig:
    targets = tuple(_target(t) for t in r.targets)
    names = [t.name for t in targets]
    if len(set(names)) != len(names):
        raise PlanError("target names must be unique within a route", field=f"{where}.targets")
    d = r.deadlines
    return RouteConfig(
        name=r.name,
        targets=targets,
        deadlines=Deadlines(
            connect=d.connect, first_token=d.first_token, stream_idle=d.stream_idle, total=d.total
        ),
        on_stream_failure=r.on_stream_failure,
        tier=r.tier,
    )


def _validated(serving: Serving | Mapping[str, Any]) -> Serving:
    """The plan's own model of ``serving`` (a bare dict is validated by it, not by hand)."""
    if isinstance(serving, Serving):
        return serving
    try:
        return Serving.model_validate(serving)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        where = ".".join(
            f"[{p}]" if isinstance(p, int) else str(p) for p in ("serving", *err["loc"])
        ).replace(".[", "[")
        message = err["msg"].removeprefix("Value error, ")
        raise PlanError(message, field=where, hint="see docs/plan.md#serving") from None


def from_mapping(
    serving: Serving | Mapping[str, Any],
    *,
    events_path: str | None = None,
    redis_url: str | None = None,
) -> GatewayConfig:
    """Build the config from a ``serving`` section: the plan's :class:`Serving` model, or
    a dict in the plan's shape (validated by that model: one definition of every field,
    default and constraint)."""
    model = _validated(serving)
    routes = tuple(_route(r, f"serving.routes[{i}]") for i, r in enumerate(model.routes))
    names = [r.name for r in routes]
    if len(set(names)) != len(names):
        raise PlanError("route names must be unique", field="serving.routes")
    auth, gw = model.auth, model.gateway
    health = gw.health
    policy = HealthPolicy(
        eject_after=health.eject_after,
        base_ejection=health.eject_for,
        probe_interval=min(_FIRST_PROBE, health.probe_every),
        max_probe_interval=health.probe_every,
        retry_budget_ratio=gw.retry_budget,
    )
    if redis_url is None and gw.redis_url_env:
        env = gw.redis_url_env
        redis_url = os.environ.get(env)
        if not redis_url:
            raise SecretMissing(
                f"serving.gateway.redis_url_env names {env}, which is not set",
                hint=f"export {env}=redis://127.0.0.1:6379/0, or remove redis_url_env",
            )
    return GatewayConfig(
        routes=routes,
        client_keys_env=auth.client_keys_env,
        client_keys=tuple(k for k in auth.client_keys if k.reveal()),
        auth_disabled=auth.disabled,
        health=policy,
        redis_url=redis_url,
        events_path=events_path,
        max_request_body=gw.max_request_body_mib * 1024 * 1024,
        admin_keys_env=auth.admin_keys_env,
        translation_probe=gw.translation_probe,
        translation_probe_window=gw.translation_probe_window,
    )


def from_plan(
    plan: Plan, *, events_path: str | None = None, redis_url: str | None = None
) -> GatewayConfig:
    """Build the config from a loaded :class:`drkit.plan.models.Plan`."""
    if not plan.serving.routes:
        raise PlanError(
            "the plan has no serving routes",
            field="serving.routes",
            hint="add serving.routes to drkit.yaml (see docs/gateway.md)",
        )
    config = from_mapping(plan.serving, events_path=events_path, redis_url=redis_url)
    limits = plan.testing.live_limits
    return replace(
        config,
        status_feeds=status_feeds(plan),
        live_max_fraction=limits.max_fraction,
        live_max_duration=limits.max_duration,
    )


def status_feeds(plan: Plan) -> tuple[StatusFeedConfig, ...]:
    """The plan's providers with a ``status_url``, each with the targets it operates."""
    out = []
    for p in plan.providers:
        if p.status_url is None:
            continue
        operated = (t.name for r in plan.serving.routes for t in r.targets if t.operator == p.name)
        targets = tuple(dict.fromkeys(operated))
        if not targets:
            continue  # nothing of the gateway's to demote
        out.append(
            StatusFeedConfig(
                vendor=p.name,
                url=p.status_url,
                targets=targets,
                poll_every=p.status_poll_every,
                components=tuple(p.status_components),
                demote_at=p.status_demote_at,
            )
        )
    return tuple(out)
