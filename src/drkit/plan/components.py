"""The plan's data components: datasets, vector stores (and their standbys), models,
eval sets and results, harnesses and MLflow registries, with their retention."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import (
    Field,
    model_validator,
)

from drkit.plan.fields import (
    Name,
    NonNegInt,
    PlanModel,
    Quality,
    Region,
    UrlStr,
    VersionLabel,
)
from drkit.plan.schedule import Dur, PositiveDur, Schedule

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
