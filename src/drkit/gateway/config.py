"""The gateway's runtime configuration: routes, targets, deadlines, health policy.

Plain frozen dataclasses, built from the plan's ``serving`` section by :func:`from_plan`
(or :func:`from_mapping` for a bare ``serving`` dict, used by tests and the benchmark).
Secrets are never stored here: a target names the environment variable holding its key
and :func:`resolve_api_key` reads it at the last moment.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from drkit.errors import PlanError, SecretMissing
from drkit.types import Secret, parse_duration

Dialect = Literal["openai", "anthropic"]
StreamFailureMode = Literal["error", "continue"]
DIALECTS: tuple[Dialect, ...] = ("openai", "anthropic")
#: Anthropic's own limit for the Messages API: anything a provider accepts gets through
DEFAULT_MAX_REQUEST_BODY = 32 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Deadlines:
    """Seconds allowed for each phase of one upstream attempt."""

    connect: float = 2.0
    first_token: float = 10.0
    stream_idle: float = 15.0
    total: float = 120.0


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
    deadlines: Deadlines = Deadlines()
    on_stream_failure: StreamFailureMode = "error"
    tier: str | None = None


@dataclass(frozen=True, slots=True)
class HealthPolicy:
    """Cross-request health: ejection, probing and the retry budget."""

    #: consecutive failed attempts (5xx, 429, malformed) before a target is ejected;
    #: connection errors and timeouts eject at once (a black hole must cost one deadline).
    eject_after: int = 3
    #: first ejection lasts this long, doubling per consecutive ejection up to the max.
    base_ejection: float = 1.0
    max_ejection: float = 60.0
    #: probes of an ejected target start this often and back off to the max interval;
    #: the max bounds how long a recovered primary waits before traffic returns.
    probe_interval: float = 0.5
    max_probe_interval: float = 2.0
    #: outer bound on one probe; each probe also has the target's route deadlines
    probe_timeout: float = 30.0
    #: retries may be at most ``ratio`` of requests over ``window`` seconds, plus ``min``.
    retry_budget_ratio: float = 0.2
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


# --- building from data -----------------------------------------------------------------


def _get(obj: Any, name: str, default: Any = None) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(name, default)
    return getattr(obj, name, default)


def _seconds(value: Any, default: float, where: str) -> float:
    if value is None:
        return default
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise PlanError(str(exc), field=where) from exc


def _secret(value: Any) -> Secret | None:
    if value is None or isinstance(value, Secret):
        return value
    return Secret(str(value))


def _target(raw: Any, where: str) -> TargetConfig:
    provider = _get(raw, "provider")
    provider = getattr(provider, "value", provider)
    if provider not in DIALECTS:
        raise PlanError(
            f"provider must be one of {', '.join(DIALECTS)}, not {provider!r}",
            field=f"{where}.provider",
        )
    for required in ("name", "model", "base_url"):
        if not _get(raw, required):
            raise PlanError("is required", field=f"{where}.{required}")
    params = _get(raw, "params") or {}
    return TargetConfig(
        name=str(_get(raw, "name")),
        provider=provider,
        model=str(_get(raw, "model")),
        base_url=str(_get(raw, "base_url")).rstrip("/"),
        api_key_env=_get(raw, "api_key_env"),
        api_key=_secret(_get(raw, "api_key")),
        region=_get(raw, "region"),
        system_prompt=_get(raw, "system_prompt"),
        params=dict(params),
    )


def _route(raw: Any, where: str) -> RouteConfig:
    name = _get(raw, "name")
    if not name:
        raise PlanError("is required", field=f"{where}.name")
    raw_targets = _get(raw, "targets") or []
    if not raw_targets:
        raise PlanError("a route needs at least one target", field=f"{where}.targets")
    targets = tuple(_target(t, f"{where}.targets[{i}]") for i, t in enumerate(raw_targets))
    names = [t.name for t in targets]
    if len(set(names)) != len(names):
        raise PlanError("target names must be unique within a route", field=f"{where}.targets")
    d = _get(raw, "deadlines") or {}
    base = Deadlines()
    deadlines = Deadlines(
        connect=_seconds(_get(d, "connect"), base.connect, f"{where}.deadlines.connect"),
        first_token=_seconds(
            _get(d, "first_token"), base.first_token, f"{where}.deadlines.first_token"
        ),
        stream_idle=_seconds(
            _get(d, "stream_idle"), base.stream_idle, f"{where}.deadlines.stream_idle"
        ),
        total=_seconds(_get(d, "total"), base.total, f"{where}.deadlines.total"),
    )
    raw_mode = _get(raw, "on_stream_failure") or "error"
    raw_mode = getattr(raw_mode, "value", raw_mode)
    mode: StreamFailureMode = "continue" if raw_mode == "continue" else "error"
    if raw_mode not in ("error", "continue"):
        raise PlanError(
            f"must be 'error' or 'continue', not {raw_mode!r}", field=f"{where}.on_stream_failure"
        )
    tier = _get(raw, "tier")
    return RouteConfig(
        name=str(name),
        targets=targets,
        deadlines=deadlines,
        on_stream_failure=mode,
        tier=None if tier is None else str(tier),
    )


def from_mapping(
    serving: Any, *, events_path: str | None = None, redis_url: str | None = None
) -> GatewayConfig:
    """Build the config from a ``serving`` section (a dict or the plan's pydantic model).

    Reads ``auth`` (client_keys_env, client_keys, disabled), ``routes`` and
    ``gateway`` (retry_budget, health.eject_after/eject_for/probe_every, redis_url_env).
    """
    raw_routes = _get(serving, "routes") or []
    routes = tuple(_route(r, f"serving.routes[{i}]") for i, r in enumerate(raw_routes))
    names = [r.name for r in routes]
    if len(set(names)) != len(names):
        raise PlanError("route names must be unique", field="serving.routes")
    auth = _get(serving, "auth") or {}
    disabled = bool(_get(auth, "disabled", False))
    keys_env = _get(auth, "client_keys_env", "DRKIT_GATEWAY_KEYS")
    inline = tuple(s for s in (_secret(k) for k in _get(auth, "client_keys") or ()) if s)
    gw = _get(serving, "gateway") or {}
    health = _get(gw, "health") or {}
    base = HealthPolicy()
    probe_every = _seconds(
        _get(health, "probe_every"), base.max_probe_interval, "serving.gateway.health.probe_every"
    )
    policy = HealthPolicy(
        eject_after=int(_get(health, "eject_after") or base.eject_after),
        base_ejection=_seconds(
            _get(health, "eject_for"), base.base_ejection, "serving.gateway.health.eject_for"
        ),
        max_ejection=base.max_ejection,
        probe_interval=min(base.probe_interval, probe_every),
        max_probe_interval=probe_every,
        retry_budget_ratio=float(_get(gw, "retry_budget", base.retry_budget_ratio)),
    )
    if redis_url is None and _get(gw, "redis_url_env"):
        env = str(_get(gw, "redis_url_env"))
        redis_url = os.environ.get(env)
        if not redis_url:
            raise SecretMissing(
                f"serving.gateway.redis_url_env names {env}, which is not set",
                hint=f"export {env}=redis://127.0.0.1:6379/0, or remove redis_url_env",
            )
    return GatewayConfig(
        routes=routes,
        client_keys_env=keys_env,
        client_keys=inline,
        auth_disabled=disabled,
        health=policy,
        redis_url=redis_url,
        events_path=events_path,
        max_request_body=int(_get(gw, "max_request_body_mib") or 32) * 1024 * 1024,
    )


def from_plan(
    plan: Any, *, events_path: str | None = None, redis_url: str | None = None
) -> GatewayConfig:
    """Build the config from a loaded :class:`drkit.plan.models.Plan`."""
    serving = _get(plan, "serving")
    if serving is None or not _get(serving, "routes"):
        raise PlanError(
            "the plan has no serving routes",
            field="serving.routes",
            hint="add serving.routes to drkit.yaml (see docs/gateway.md)",
        )
    return from_mapping(serving, events_path=events_path, redis_url=redis_url)
