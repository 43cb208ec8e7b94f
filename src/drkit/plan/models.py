"""The DR plan (``drkit.yaml``) as typed models.

Every model forbids unknown keys. Durations are seconds (``Dur``, written ``15m``,
``1h``, ``7d``), schedules are :mod:`drkit.plan.schedule` objects, secrets are
:class:`drkit.types.Secret` (masked in repr/str/JSON) or ``*_env`` fields naming an
environment variable read at the moment of use. Load plans with
:func:`drkit.plan.loader.load_plan`, which adds file:line information and the
cross-reference checks that a single model cannot do (undefined tiers, repositories,
datasets; duplicate names).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    PrivateAttr,
    StringConstraints,
    model_validator,
)

from drkit.plan.schedule import Dur, PositiveDur, Schedule
from drkit.plan.source import Location, SourceMap
from drkit.types import Secret

#: Names of things in the plan: letters, digits, ``.``, ``_``, ``-``; used on the CLI.
Name = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", max_length=64),
]
#: A region label (``eu-west``, ``us-east-1``); compared for equality only.
Region = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", max_length=64),
]
#: The name of an environment variable.
EnvName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=128)]


def _number_to_str(value: Any) -> Any:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


#: A version label; ``3`` and ``"3"`` are the same version.
VersionLabel = Annotated[str, BeforeValidator(_number_to_str), StringConstraints(min_length=1)]


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{value!r} is not an http(s) URL, e.g. https://api.openai.com/v1")
    return value.rstrip("/")


HttpUrlStr = Annotated[str, AfterValidator(_http_url)]


def _has_scheme(value: str) -> str:
    if "://" not in value:
        raise ValueError(f"{value!r} is not a URL: expected scheme://..., e.g. file:///srv/repo")
    return value


UrlStr = Annotated[str, AfterValidator(_has_scheme)]

NonNegInt = Annotated[int, Field(ge=0)]
NonNegFloat = Annotated[float, Field(ge=0, allow_inf_nan=False)]


class PlanModel(BaseModel):
    """Base of every plan model: unknown keys are errors, values are validated on set."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


# --- tiers -----------------------------------------------------------------------------


class Quality(PlanModel):
    """What an eval run must reach (docs/evals.md); each field unset here falls through to
    the next, less specific place (eval set, model, route, tier, then the default)."""

    floor: Annotated[float, Field(ge=0, le=1)] | None = Field(
        None,
        description="the mean score an eval run must reach to pass (its pass_threshold); "
        "unset everywhere: only max_errors decides",
    )
    max_drop: Annotated[float, Field(ge=0, le=1)] | None = Field(
        None, description="largest tolerated drop of the mean score against a baseline (0)"
    )
    alpha: Annotated[float, Field(gt=0, lt=1)] | None = Field(
        None, description="significance level of the paired comparison (0.05)"
    )
    max_errors: NonNegInt | None = Field(
        None, description="examples that may fail to get an answer in a passing run (0)"
    )


class Tier(PlanModel):
    """A recovery class: how fast (RTO) and how little data loss (RPO) it needs."""

    rto: PositiveDur = Field(description="recovery time objective: longest tolerable outage")
    rpo: PositiveDur = Field(description="recovery point objective: most data one may lose")
    multi_region: bool = Field(
        False, description="must survive the loss of a region (critical workloads)"
    )
    quality: Quality | None = Field(None, description="eval thresholds of this tier's models")
    critical: bool | None = Field(
        None, description="mission-critical; defaults to true for the tier named 'critical'"
    )
    description: str | None = None


# --- repositories ----------------------------------------------------------------------


class Repository(PlanModel):
    """A backup repository: where snapshots live, and in which region."""

    name: Name
    url: UrlStr = Field(description="file:///path, s3://bucket/prefix?endpoint=..., ...")
    region: Region
    password_env: EnvName | None = Field(
        None, description="environment variable holding the repository password"
    )
    password: Secret | None = Field(None, description="the password itself (use ${ENV})")
    password_file: str | None = Field(None, description="a file holding the password")

    @model_validator(mode="after")
    def _one_password_source(self) -> Repository:
        given = [
            f for f in ("password_env", "password", "password_file") if getattr(self, f) is not None
        ]
        if len(given) > 1:
            raise ValueError(f"give only one of password_env, password, password_file: {given}")
        return self


class Replica(Repository):
    """A copy of the primary repository, normally in another region."""

    copy_every: PositiveDur = Field(
        3600.0, description="how often new snapshots are copied here (replication lag bound)"
    )


class Repositories(PlanModel):
    primary: Repository
    replicas: list[Replica] = Field(default_factory=list)


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


# --- data components -------------------------------------------------------------------


class Retention(PlanModel):
    """Which snapshots to keep (restic semantics; keep_within counts from the newest)."""

    keep_last: NonNegInt | None = None
    keep_hourly: NonNegInt | None = None
    keep_daily: NonNegInt | None = None
    keep_weekly: NonNegInt | None = None
    keep_monthly: NonNegInt | None = None
    keep_yearly: NonNegInt | None = None
    keep_within: Dur | None = None

    @model_validator(mode="after")
    def _not_empty(self) -> Retention:
        if all(getattr(self, f) is None for f in type(self).model_fields):
            raise ValueError("a retention needs at least one keep_* rule, e.g. keep_daily: 30")
        return self

    def span(self, interval: float | None = None) -> float:
        """How far back (seconds) this policy keeps snapshots taken every ``interval``."""
        spans = [
            (self.keep_within or 0.0),
            (self.keep_hourly or 0) * 3600.0,
            (self.keep_daily or 0) * 86400.0,
            (self.keep_weekly or 0) * 7 * 86400.0,
            (self.keep_monthly or 0) * 30 * 86400.0,
            (self.keep_yearly or 0) * 365 * 86400.0,
        ]
        if interval is not None:
            spans.append((self.keep_last or 0) * interval)
        return max(spans)


class Component(PlanModel):
    """Something drkit snapshots: a name, a tier, a schedule, a retention, replicas."""

    kind: ClassVar[str] = "component"

    name: Name
    tier: Name | None = None
    description: str | None = None
    region: Region | None = Field(
        None, description="where the live data lives; defaults to the primary repository's"
    )
    schedule: Schedule | None = Field(None, description="how often to snapshot")
    retention: Retention | None = None
    replicate_to: list[Name] = Field(
        default_factory=list, description="replica repositories that receive its snapshots"
    )


class Standby(PlanModel):
    """A warm standby of a vector store: a second engine, usually in another region, kept
    in step by ``drkit standby sync`` (docs/standby.md)."""

    engine: UrlStr = Field(
        description="connector URL of the standby engine; any supported engine, not only "
        "the primary's (e.g. qdrant+http://standby.eu-central:6333)"
    )
    region: Region = Field(description="the standby's region (a regional failover promotes it)")
    batch_size: int = Field(
        1000, ge=1, le=100_000, description="records read and written per batch during a sync"
    )
    interval: PositiveDur = Field(
        60.0, description="how often the agent (and `standby sync --follow`) syncs it"
    )


class VectorStore(Component):
    kind: ClassVar[str] = "vector_store"

    tier: Name
    engine: UrlStr = Field(description="connector URL, e.g. qdrant+local:///var/lib/qdrant")
    collections: list[str] = Field(default_factory=list, description="empty: all collections")
    allow_empty: bool = Field(
        False,
        description="a store with no collections (or without a listed one) is expected: "
        "backup skips it instead of failing",
    )
    document_key: str | None = Field(
        None,
        description="engines without a document field (Qdrant): the payload key that holds "
        "the document text (default __drkit_document); passed to the connector as "
        "?document_key= on the engine URL",
    )
    standby: Standby | None = Field(
        None, description="a warm standby engine kept in step incrementally (docs/standby.md)"
    )

    @model_validator(mode="before")
    @classmethod
    def _document_key_in_url(cls, data: Any) -> Any:
        # one definition: the connector reads it from the URL, wherever the URL is opened
        key = data.get("document_key") if isinstance(data, dict) else None
        if key and isinstance(data.get("engine"), str):
            from urllib.parse import quote

            engine = data["engine"]
            if "document_key=" not in engine:
                sep = "&" if "?" in engine else "?"
                engine = f"{engine}{sep}document_key={quote(str(key))}"
            data = {**data, "engine": engine}
        return data


class Dataset(Component):
    kind: ClassVar[str] = "dataset"

    tier: Name
    path: str = Field(min_length=1, description="directory or URL; relative to the plan")
    versioned: bool = Field(False, description="every snapshot is kept as a named version")


class TrainedOn(PlanModel):
    dataset: Name
    version: VersionLabel


class Model(Component):
    kind: ClassVar[str] = "model"

    tier: Name
    version: VersionLabel
    path: str | None = Field(None, description="model artifacts to snapshot, if drkit keeps them")
    trained_on: list[TrainedOn] = Field(default_factory=list)
    rollback_window: PositiveDur | None = Field(
        None,
        description="how far back a version an alias named stays restorable: retention keeps "
        "its training data and artifacts (default 30d)",
    )
    quality: Quality | None = Field(None, description="eval thresholds of its versions")


class EvalSet(Component):
    kind: ClassVar[str] = "eval_set"

    path: str = Field(min_length=1)
    quality: Quality | None = Field(None, description="eval thresholds of runs of this set")


class EvalResults(Component):
    kind: ClassVar[str] = "eval_result"

    path: str = Field(min_length=1)


class Harness(Component):
    """Code kept in git (the eval harness): snapshotted as a git bundle of every ref,
    incremental against the previous snapshot's refs (docs/evals.md#the-eval-harness)."""

    kind: ClassVar[str] = "harness"

    path: str = Field(
        min_length=1, description="a git repository (its work tree); relative to the plan"
    )


class MlflowRegistry(Component):
    """An MLflow model registry: registered models, versions, aliases, tags and each
    version's artifacts, snapshotted through MLflow's client and restorable into another,
    empty MLflow server (docs/models.md#back-up-and-restore-an-mlflow-registry)."""

    kind: ClassVar[str] = "mlflow"

    tier: Name
    tracking_uri: UrlStr = Field(
        description="the MLflow tracking (and registry) URI, e.g. http://mlflow.internal:5000 "
        "or sqlite:///srv/mlflow.db; credentials come from MLflow's own environment variables "
        "(MLFLOW_TRACKING_TOKEN, MLFLOW_TRACKING_USERNAME/PASSWORD)"
    )
    models: list[str] = Field(
        default_factory=list, description="registered models to back up; empty: every one"
    )
    allow_empty: bool = Field(
        False,
        description="a registry with no registered model (or without a listed one) is "
        "expected: backup shows it as nothing to back up, not a failure",
    )


# --- testing, providers, status, cost --------------------------------------------------


class AutomatedDrill(PlanModel):
    """A drill ``drkit agent run`` runs unattended, on its own cadence."""

    scenario: str = Field(description="the drill scenario (`drkit drill list`)")
    every: PositiveDur = Field(description="how often the agent runs it")
    subject: str | None = Field(
        None, description="the route or component to drill (default: the scenario's first)"
    )


class ScheduledEval(PlanModel):
    """An eval set ``drkit agent run`` sends through a route on a cadence, as ``drkit eval
    run EVAL_SET --route ROUTE`` does (docs/evals.md#scheduled-evals)."""

    eval_set: str = Field(
        min_length=1,
        description="a JSONL eval set (docs/evals.md), relative to the plan; it lies in an "
        "`eval_sets` entry's path (DR405)",
    )
    route: Name = Field(description="the route it runs through, via the plan's gateway")
    every: PositiveDur = Field(description="how often the agent runs it")
    api_key_env: EnvName | None = Field(
        None,
        description="environment variable with a gateway client key (default: the first of "
        "serving.auth's client keys; none with auth disabled)",
    )
    concurrency: int = Field(8, ge=1, le=256, description="requests in flight at once")


class LiveLimits(PlanModel):
    """What a live drill on the running gateway may do (``drkit drill run --live``)."""

    max_fraction: float = Field(
        0.1, gt=0, le=1, description="largest share of a route's real requests a drill may fault"
    )
    max_duration: PositiveDur = Field(3600.0, description="longest live fault")
    lease: PositiveDur = Field(
        15.0,
        description="the gateway lifts a fault whose drill has not renewed it for this long "
        "(the drill renews every third of it)",
    )
    max_error_rate: float = Field(
        0.01,
        ge=0,
        le=1,
        description="stop condition: share of the route's requests that clients saw fail",
    )
    max_added_p99: PositiveDur = Field(
        2.0, description="stop condition: p99 latency the faulted requests may add"
    )


class Testing(PlanModel):
    """How often DR is proven; the lint rules hold these against the framework."""

    restore_test_every: PositiveDur | None = None
    failover_drill_every: PositiveDur | None = None
    regional_failover_every: PositiveDur | None = None
    gameday_every: PositiveDur | None = None
    automated_drills: list[AutomatedDrill] = Field(
        default_factory=list,
        description="drills the agent runs on their cadence (each alone: `drill:<scenario>`)",
    )
    scheduled_evals: list[ScheduledEval] = Field(
        default_factory=list,
        description="eval sets the agent runs through a route on their cadence "
        "(`eval:<route>:<eval set>`); a run that fails its floor or regresses fails the job",
    )
    live_limits: LiveLimits = Field(default_factory=LiveLimits)
    budget: NonNegFloat | None = Field(
        None,
        description="what testing may cost a year, in cost.currency (drills, restore tests "
        "and their responders, as drkit cost prices them; DR712 warns above it)",
    )


class ProviderSLA(PlanModel):
    """What a provider promises; SLA credits are compensation, not DR."""

    name: Name
    sla: float | None = Field(None, gt=0, le=100, description="availability in percent")
    credits_counted_as_dr: bool = False
    dr_capabilities: str | None = None
    regions: list[Region] = Field(default_factory=list)
    outages_per_year: NonNegFloat | None = Field(
        None,
        description="how often it fails over a year (drkit cost counts a failover's time per "
        "outage in a route's composite availability; default 12)",
    )
    status_url: HttpUrlStr | None = Field(
        None,
        description="the provider's status feed: Statuspage JSON (/api/v2/summary.json or "
        "status.json) or an Atom/RSS incident feed; the gateway polls it and demotes the "
        "provider's targets while it announces an outage",
    )
    status_poll_every: PositiveDur = Field(60.0, description="how often the gateway polls it")
    status_components: list[str] = Field(
        default_factory=list,
        description="Statuspage component names to watch (summary.json); empty: the whole "
        "page's indicator",
    )
    status_demote_at: Literal["minor", "major", "critical"] = Field(
        "major",
        description="the Statuspage indicator at which the targets are demoted (major: a "
        "partial outage or worse; critical: a major outage only)",
    )


class StatusComponent(PlanModel):
    name: str = Field(min_length=1, max_length=100)
    covers: list[Name] = Field(min_length=1, description="routes and components it reports on")
    description: str | None = None


class StatusContact(PlanModel):
    """Who hears of public incident updates: a signed webhook and/or an email address."""

    name: Name
    components: list[str] = Field(
        default_factory=list, description="status components it follows (empty: all)"
    )
    webhook: HttpUrlStr | None = Field(None, description="POSTed JSON, signed with HMAC-SHA256")
    secret: Secret | None = Field(None, description="the webhook's HMAC key (use ${ENV})")
    email: str | None = Field(
        None, pattern=r"^[^@\s]+@[^@\s]+$", description="mailed through status_page.smtp"
    )

    @model_validator(mode="after")
    def _reachable(self) -> StatusContact:
        if not self.webhook and not self.email:
            raise ValueError("give a webhook or an email (or both)")
        if self.webhook and not self.secret:
            raise ValueError("a webhook needs a secret (its HMAC key; use ${ENV})")
        return self


class StatusSmtp(PlanModel):
    """The mail relay for subscribers and the escalation list."""

    host: str = "127.0.0.1"
    port: int = Field(25, ge=1, le=65535)
    sender: str = Field("status@localhost", description="the From address")
    starttls: bool = Field(False, description="upgrade the connection with STARTTLS")
    username: str | None = None
    password: Secret | None = Field(None, description="(use ${ENV})")


class StatusPage(PlanModel):
    title: str = "Service status"
    components: list[StatusComponent] = Field(default_factory=list)
    url: HttpUrlStr | None = Field(None, description="the page's public address, for links")
    subscribers: list[StatusContact] = Field(
        default_factory=list, description="notified of every public incident update"
    )
    escalation: list[StatusContact] = Field(
        default_factory=list,
        description="enterprise customers briefed proactively when an incident is approved",
    )
    smtp: StatusSmtp = Field(default_factory=StatusSmtp)


class CostInputs(PlanModel):
    """Prices and sizes the cost estimate multiplies out."""

    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] = "USD"
    storage_per_gb_month: NonNegFloat = 0.023
    egress_per_gb: NonNegFloat = 0.02
    sizes_gb: dict[Name, NonNegFloat] = Field(
        default_factory=dict, description="estimated size per component"
    )
    standby_per_month: dict[Name, NonNegFloat] = Field(
        default_factory=dict, description="standby infrastructure per tier, per month"
    )
    outage_cost_per_hour: dict[Name, NonNegFloat] = Field(
        default_factory=dict, description="business impact of an outage per tier"
    )
    drill_hours_per_year: NonNegFloat = 0.0
    drill_cost_per_hour: NonNegFloat = 0.0
    monthly_change: Annotated[float, Field(ge=0, le=1)] = Field(
        0.1,
        description="share of a component's data that is new each month: the egress "
        "estimate while no repository measured it",
    )
    responders_per_drill: NonNegFloat = Field(
        0.0, description="people busy during a drill or an incident"
    )
    responder_cost_per_hour: NonNegFloat = Field(0.0, description="cost of one responder-hour")
    token_price_per_million: dict[Name, NonNegFloat] = Field(
        default_factory=dict,
        description="price of a million tokens per route target (eval runs' cost)",
    )


class StateSettings(PlanModel):
    """Where drkit's own state lives when it is not the embedded SQLite file."""

    url: Secret | None = Field(
        None,
        description="a postgresql:// URL (use ${ENV}): several agents share the state and "
        "hold a leader lease in it",
    )
    lease_ttl: PositiveDur = Field(
        15.0, description="the agents' leader lease: a dead leader is replaced after this long"
    )

    @model_validator(mode="after")
    def _postgres_only(self) -> StateSettings:
        if self.url is not None and not self.url.reveal().startswith(
            ("postgresql://", "postgres://")
        ):
            raise ValueError("state.url must be a postgresql:// URL (SQLite is the default)")
        return self


class OpenLineageOut(PlanModel):
    """Where drkit sends OpenLineage RunEvents (docs/models.md#openlineage): one of a
    file (one JSON event per line, appended) or an HTTP endpoint (Marquez and others)."""

    file: str | None = Field(
        None, min_length=1, description="append the events to this file; relative to the plan"
    )
    url: HttpUrlStr | None = Field(
        None, description="POST the events to this server (e.g. http://127.0.0.1:5000)"
    )
    endpoint: str = Field("api/v1/lineage", description="the path the events are POSTed to")
    api_key_env: EnvName | None = Field(
        None, description="environment variable with the server's API key (a Bearer token)"
    )
    namespace: str | None = Field(
        None,
        min_length=1,
        description="the namespace of drkit's jobs and datasets (default drkit://<plan name>)",
    )
    timeout: PositiveDur = Field(5.0, description="how long one HTTP attempt may take")

    @model_validator(mode="after")
    def _one_destination(self) -> OpenLineageOut:
        if (self.file is None) == (self.url is None):
            raise ValueError("give one of file or url")
        if self.api_key_env is not None and self.url is None:
            raise ValueError("api_key_env is for url (an HTTP endpoint)")
        return self


class LineageSettings(PlanModel):
    """Lineage out of drkit (the registry and lineage graph live in drkit's state)."""

    openlineage: OpenLineageOut | None = Field(
        None, description="emit OpenLineage events for backups, model versions and eval runs"
    )


# --- the plan --------------------------------------------------------------------------


class Plan(PlanModel):
    """A whole ``drkit.yaml``."""

    version: Literal[1]
    name: Name
    description: str | None = None
    state_dir: str = Field(".drkit", description="drkit's own state; relative to the plan")
    state: StateSettings | None = Field(None, description="drkit's state in PostgreSQL")
    tiers: dict[Name, Tier] = Field(min_length=1)
    repositories: Repositories
    serving: Serving = Field(default_factory=Serving)
    vector_stores: list[VectorStore] = Field(default_factory=list)
    datasets: list[Dataset] = Field(default_factory=list)
    models: list[Model] = Field(default_factory=list)
    eval_sets: list[EvalSet] = Field(default_factory=list)
    eval_results: list[EvalResults] = Field(default_factory=list)
    harnesses: list[Harness] = Field(
        default_factory=list,
        description="git repositories of eval harness code; an eval run records the commit",
    )
    mlflow_registries: list[MlflowRegistry] = Field(
        default_factory=list,
        description="MLflow model registries: models, versions, aliases, tags, artifacts",
    )
    testing: Testing = Field(default_factory=Testing)
    providers: list[ProviderSLA] = Field(default_factory=list)
    status_page: StatusPage = Field(default_factory=StatusPage)
    cost: CostInputs = Field(default_factory=CostInputs)
    lineage: LineageSettings = Field(default_factory=LineageSettings)

    _source: SourceMap = PrivateAttr(default_factory=SourceMap)

    # -- where things are ---------------------------------------------------------------

    @property
    def source(self) -> SourceMap:
        """file:line of every element (empty when the plan was not loaded from a file)."""
        return self._source

    def locate(self, *path: str | int) -> Location:
        """The file, line and dotted field name of ``path`` (e.g. ``"serving", "routes", 0``)."""
        return self._source.locate(path)

    @property
    def base_dir(self) -> Path:
        """The directory relative paths in the plan are resolved against."""
        return self._source.base_dir

    def resolve_path(self, path: str) -> Path:
        p = Path(path).expanduser()
        return p if p.is_absolute() else self.base_dir / p

    # -- lookups ------------------------------------------------------------------------

    def is_critical(self, tier: str) -> bool:
        t = self.tiers.get(tier)
        if t is None:
            return False
        return t.critical if t.critical is not None else tier == "critical"

    def repository(self, name: str) -> Repository:
        """The primary or replica named ``name`` (``KeyError`` when there is none)."""
        for repo in [self.repositories.primary, *self.repositories.replicas]:
            if repo.name == name:
                return repo
        raise KeyError(name)

    def route(self, name: str) -> Route:
        for route in self.serving.routes:
            if route.name == name:
                return route
        raise KeyError(name)

    def components(self) -> Iterator[tuple[tuple[str | int, ...], Component]]:
        """Every snapshotted component with its path in the plan, in file order per kind."""
        sections = ("vector_stores", "datasets", "models", "eval_sets", "eval_results")
        for section in (*sections, "harnesses", "mlflow_registries"):
            items: list[Component] = getattr(self, section)
            for i, item in enumerate(items):
                yield (section, i), item

    def component(self, name: str) -> Component:
        for _, item in self.components():
            if item.name == name:
                return item
        raise KeyError(name)

    def component_region(self, component: Component) -> str:
        return component.region or self.repositories.primary.region
