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

from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from pydantic import (
    Field,
    PrivateAttr,
    model_validator,
)

from drkit.plan.components import (
    Component,
    Dataset,
    EvalResults,
    EvalSet,
    Harness,
    MlflowRegistry,
    Model,
    Retention,
    Standby,
    TrainedOn,
    VectorStore,
)
from drkit.plan.fields import (
    EnvName,
    HttpUrlStr,
    Name,
    NonNegFloat,
    NonNegInt,
    PlanModel,
    Quality,
    Region,
    Tier,
    UrlStr,
    VersionLabel,
)
from drkit.plan.schedule import PositiveDur
from drkit.plan.serving import (
    Canary,
    Deadlines,
    GatewaySettings,
    Health,
    Route,
    Serving,
    ServingAuth,
    Target,
)
from drkit.plan.settings import (
    AutomatedDrill,
    CostInputs,
    LineageSettings,
    LiveLimits,
    OpenLineageOut,
    ProviderSLA,
    ScheduledEval,
    StateSettings,
    StatusComponent,
    StatusContact,
    StatusPage,
    StatusSmtp,
    Testing,
)
from drkit.plan.source import Location, SourceMap
from drkit.types import Secret

#: the plan's models, wherever each is defined (one import for callers)
__all__ = [
    "AutomatedDrill",
    "Canary",
    "Component",
    "CostInputs",
    "Dataset",
    "Deadlines",
    "EnvName",
    "EvalResults",
    "EvalSet",
    "GatewaySettings",
    "Harness",
    "Health",
    "HttpUrlStr",
    "LineageSettings",
    "LiveLimits",
    "MlflowRegistry",
    "Model",
    "Name",
    "NonNegFloat",
    "NonNegInt",
    "OpenLineageOut",
    "Plan",
    "PlanModel",
    "ProviderSLA",
    "Quality",
    "Region",
    "Replica",
    "Repositories",
    "Repository",
    "Retention",
    "Route",
    "ScheduledEval",
    "Serving",
    "ServingAuth",
    "Standby",
    "StateSettings",
    "StatusComponent",
    "StatusContact",
    "StatusPage",
    "StatusSmtp",
    "Target",
    "Testing",
    "Tier",
    "TrainedOn",
    "UrlStr",
    "VectorStore",
    "VersionLabel",
]

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
