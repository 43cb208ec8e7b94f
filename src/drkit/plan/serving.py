"""The plan's ``serving`` section: routes, targets, deadlines, the canary, the gateway's
settings and its client authentication."""

from __future__ import annotations

import ipaddress
from typing import Annotated, Literal

from pydantic import (
    Field,
    JsonValue,
    model_validator,
)

from drkit.plan.fields import (
    EnvName,
    HttpUrlStr,
    Name,
    PlanModel,
    Quality,
    Region,
)
from drkit.plan.schedule import PositiveDur
from drkit.types import Secret

# --- serving ---------------------------------------------------------------------------


class ServingAuth(PlanModel):
    """Client authentication of the gateway: API keys, or explicitly disabled."""

    client_keys_env: EnvName | None = Field(
        "DRKIT_GATEWAY_KEYS", description="environment variable with comma-separated client keys"
    )
    client_keys: list[Secret] = Field(default_factory=list, description="keys given inline")
    disabled: bool = Field(False, description="accept any client (loopback testing only)")
    admin_keys_env: EnvName | None = Field(
        "DRKIT_GATEWAY_ADMIN_KEYS",
        description="environment variable with comma-separated admin keys: they (and no "
        "client key) may install live drill faults; none set: the live-fault API is off",
    )
    allow_unauthenticated_network: bool = Field(
        False,
        description="acknowledge that `disabled: true` serves a non-loopback address "
        "(anyone who reaches it can spend the provider keys)",
    )

    @model_validator(mode="after")
    def _consistent(self) -> ServingAuth:
        if self.disabled and self.client_keys:
            raise ValueError("disabled: true together with client_keys; choose one")
        return self


class Deadlines(PlanModel):
    """Per-attempt deadlines of a route; exceeding one fails over to the next target."""

    connect: PositiveDur = 2.0
    first_token: PositiveDur = 10.0
    stream_idle: PositiveDur = 15.0
    total: PositiveDur = 120.0


class Target(PlanModel):
    """One upstream of a route: a provider endpoint in a region serving a model."""

    name: Name
    provider: Literal["openai", "anthropic"] = Field(description="the wire dialect spoken")
    vendor: Name | None = Field(
        None,
        description="who operates the endpoint (matches providers[].name); defaults to the dialect",
    )
    region: Region
    model: str = Field(
        min_length=1, description="the upstream model name, or @MODEL:ALIAS (a registry alias)"
    )
    base_url: HttpUrlStr
    api_key_env: EnvName | None = Field(None, description="environment variable with the key")
    api_key: Secret | None = Field(None, description="the key itself (use ${ENV})")
    system_prompt: str | None = Field(None, description="prepended to the request's system")
    params: dict[str, JsonValue] = Field(
        default_factory=dict, description="parameter overrides (temperature, max_tokens, ...)"
    )

    @property
    def operator(self) -> str:
        """The vendor operating this endpoint: ``vendor``, else the dialect."""
        return self.vendor or self.provider

    @model_validator(mode="after")
    def _one_key_source(self) -> Target:
        if self.api_key_env is not None and self.api_key is not None:
            raise ValueError("give api_key_env or api_key, not both")
        return self


class Canary(PlanModel):
    """The gateway's quality canary of a route (docs/evals.md#the-quality-canary): a small
    pinned eval set sent to each target on an interval; a target scoring below the
    route's quality floor is taken out of the route until it passes again."""

    eval_set: str = Field(
        min_length=1,
        description="a JSONL eval set (docs/evals.md), relative to the plan; keep it small "
        "(each round sends every example to every target)",
    )
    every: PositiveDur = Field(60.0, description="interval between canary rounds")
    max_share: Annotated[float, Field(gt=0, le=1)] = Field(
        0.1,
        description="canary requests never exceed this share of the gateway's upstream "
        "requests over the retry budget's window (no client traffic: no canary)",
    )
    max_tokens: int = Field(64, ge=1, le=4096, description="max_tokens of a canary request")


class Route(PlanModel):
    """A model name clients ask for, served by ordered targets (first is primary)."""

    name: Name = Field(description="what clients send as `model`")
    tier: Name
    description: str | None = None
    on_stream_failure: Literal["error", "continue"] = Field(
        "error",
        description="after the first token: a typed in-stream error, or continue on the "
        "next target",
    )
    deadlines: Deadlines = Field(default_factory=Deadlines)
    targets: list[Target] = Field(min_length=1)
    quality: Quality | None = Field(None, description="eval thresholds of runs through it")
    canary: Canary | None = Field(
        None, description="the gateway's quality canary (needs a quality floor: route or tier)"
    )


class Health(PlanModel):
    """Cross-request health of targets: passive ejection and active probes."""

    eject_after: int = Field(3, ge=1, description="consecutive failures that eject a target")
    eject_for: PositiveDur = Field(30.0, description="first ejection period (then backs off)")
    probe_every: PositiveDur = Field(2.0, description="active probe interval of ejected targets")


class GatewaySettings(PlanModel):
    host: str = "127.0.0.1"
    port: int = Field(8787, ge=1, le=65535)
    retry_budget: float = Field(
        0.2, ge=0, le=1, description="retries allowed as a fraction of requests"
    )
    max_request_body_mib: int = Field(
        32, ge=1, le=1024, description="largest request body accepted (MiB); larger: 413"
    )
    health: Health = Field(default_factory=Health)
    translation_probe: float = Field(
        0.05,
        ge=0,
        le=1,
        description="share of client requests also translated to the dialect of each other-"
        "dialect target, to find what a failover could not carry (0 turns it off)",
    )
    translation_probe_window: PositiveDur = Field(
        3600.0,
        description="one translation_refused event per route, target and field per this long",
    )
    redis_url_env: EnvName | None = Field(
        None, description="environment variable with a Redis URL for shared health state"
    )


class Serving(PlanModel):
    auth: ServingAuth = Field(default_factory=ServingAuth)
    gateway: GatewaySettings = Field(default_factory=GatewaySettings)
    routes: list[Route] = Field(default_factory=list)

    def unauthenticated_on_network(self, host: str | None = None) -> bool:
        """True when the gateway would accept any client on a non-loopback address
        (``host``, else the plan's) without the plan acknowledging it."""
        auth = self.auth
        if not auth.disabled or auth.allow_unauthenticated_network:
            return False
        return not _is_loopback(host or self.gateway.host)


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name other than localhost may resolve anywhere
