"""The plan's settings beyond components and serving: ``testing`` (drills, scheduled
evals, live limits), providers' SLAs, the status page, cost inputs, drkit's state and
lineage output."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    Field,
    StringConstraints,
    model_validator,
)

from drkit.plan.fields import (
    EnvName,
    HttpUrlStr,
    Name,
    NonNegFloat,
    PlanModel,
    Region,
)
from drkit.plan.schedule import PositiveDur
from drkit.types import Secret

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
