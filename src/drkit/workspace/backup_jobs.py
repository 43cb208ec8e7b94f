"""What to back up: plan components, paths and URLs resolved into :class:`BackupJob` s.

A job is a file tree (a local path), an object-store prefix (``s3://...``), a vector
store (an engine URL, one snapshot per collection), a git repository (a harness) or an
MLflow registry (a tracking URI). :mod:`drkit.workspace.protect` runs them.

*Due*: ``drkit backup`` with no argument backs up the components that are due — those
without a schedule, without a snapshot yet, or whose schedule's next run after their
newest snapshot is not in the future. ``--all`` ignores the schedules.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from drkit.connectors.vectorstore.registry import is_vector_store_url
from drkit.errors import UsageError
from drkit.plan.models import Component, Plan
from drkit.plan.models import VectorStore as VectorStoreModel
from drkit.repository import Repository
from drkit.workspace import harness, mlflow_registry
from drkit.workspace.versions import is_versioned

JobKind = Literal["files", "store", "vectors", "git", "mlflow"]


@dataclass(frozen=True, slots=True)
class BackupJob:
    """One thing to snapshot: a local tree, an object-store prefix or a vector store."""

    component: str
    kind: JobKind
    #: a local path, an object-store URL or a vector-store engine URL
    source: str
    #: vector stores: the collections (empty: every collection of the store)
    collections: tuple[str, ...] = ()
    #: vector stores: no collections (or a listed one missing) is not a failure
    allow_empty: bool = False
    #: where the source is named (``drkit.yaml:41 datasets[0].path``), for error messages
    origin: str | None = None
    #: a versioned dataset: each snapshot is a named version (``meta.version``)
    versioned: bool = False
    #: MLflow registries: the registered models (empty: every one)
    models: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Skipped:
    component: str
    reason: str
    next_due: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"component": self.component, "reason": self.reason, "next_due": self.next_due}


def plan_vector_store(plan: Plan | None, name: str) -> VectorStoreModel | None:
    if plan is None:
        return None
    return next((v for v in plan.vector_stores if v.name == name), None)


def _job_for(plan: Plan, comp: Component) -> BackupJob:
    if harness.is_harness(comp):  # a git repository: bundles (drkit.workspace.harness)
        return harness.job_for(plan, comp)
    if mlflow_registry.is_mlflow(comp):  # a tracking URI (drkit.workspace.mlflow_registry)
        return mlflow_registry.job_for(plan, comp)
    if isinstance(comp, VectorStoreModel):
        return BackupJob(
            comp.name, "vectors", str(comp.engine), tuple(comp.collections), comp.allow_empty
        )
    path = getattr(comp, "path", None)
    if not path:
        raise UsageError(
            f"component {comp.name!r} ({comp.kind}) has nothing drkit backs up",
            hint="give it a path in the plan, or back up a PATH",
        )
    where = next((p for p, c in plan.components() if c is comp), None)
    origin = None
    if where is not None:
        loc = plan.locate(*where, "path")
        origin = (f"{loc.file}:{loc.line} " if loc.file and loc.line else "") + loc.field
    versioned = is_versioned(plan, comp.name)
    if "://" in str(path) and not str(path).startswith("file://"):
        return BackupJob(comp.name, "store", str(path), origin=origin, versioned=versioned)
    return BackupJob(
        comp.name,
        "files",
        str(plan.resolve_path(str(path).removeprefix("file://"))),
        origin=origin,
        versioned=versioned,
    )


def backupable(comp: Component) -> bool:
    """A component drkit backs up: a vector store, an MLflow registry, or one with a
    ``path``."""
    return (
        isinstance(comp, VectorStoreModel)
        or mlflow_registry.is_mlflow(comp)
        or bool(getattr(comp, "path", None))
    )


def due(
    comp: Component, repo: Repository, now: datetime | None = None
) -> tuple[bool, datetime | None]:
    """Whether ``comp`` is due by its schedule, and when its next run is."""
    if comp.schedule is None:
        return True, None
    snaps = repo.snapshots(comp.name)
    if not snaps:
        return True, None
    nxt = comp.schedule.next_after(snaps[-1].datetime)
    return nxt <= (now or datetime.now(UTC)), nxt


def backup_jobs(
    plan: Plan | None,
    names: Sequence[str],
    *,
    component: str | None = None,
    collections: Sequence[str] = (),
    repo: Repository | None = None,
    all_components: bool = False,
    now: datetime | None = None,
) -> tuple[list[BackupJob], list[Skipped]]:
    """Resolve arguments into jobs: plan COMPONENTs, PATHs, object-store or engine URLs.

    No ``names``: every component of the plan that drkit backs up (vector stores and
    components with a ``path``), only those due unless ``all_components`` (``repo`` is
    needed to know what is due). ``component`` names the snapshot of a PATH or URL.
    """
    jobs: list[BackupJob] = []
    skipped: list[Skipped] = []
    if not names:
        if plan is None:
            raise UsageError("nothing to back up", hint="give a PATH or a plan COMPONENT")
        for _, comp in plan.components():
            if not backupable(comp):
                continue
            if not all_components and repo is not None:
                is_due, nxt = due(comp, repo, now)
                if not is_due:
                    when = f"{nxt:%Y-%m-%d %H:%M:%SZ}" if nxt else None
                    skipped.append(Skipped(comp.name, "not due", when))
                    continue
            jobs.append(_with_collections(_job_for(plan, comp), collections))
        return jobs, skipped
    for name in names:
        if plan is not None:
            with contextlib.suppress(KeyError):
                comp = plan.component(name)
                jobs.append(_with_collections(_job_for(plan, comp), collections))
                continue
        if is_vector_store_url(name):
            if component is None:
                raise UsageError(
                    f"a vector store URL needs --component NAME: {name.split('?', 1)[0]}",
                    hint="e.g. --component kb",
                )
            jobs.append(BackupJob(component, "vectors", name, tuple(collections)))
            continue
        if "://" in name and not name.startswith("file://"):
            tail = name.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
            comp_name = component or tail or "store"
            jobs.append(
                BackupJob(comp_name, "store", name, versioned=is_versioned(plan, comp_name))
            )
            continue
        p = Path(name.removeprefix("file://"))
        if not p.exists():
            raise UsageError(
                f"{name!r} is neither an existing path, a vector store URL nor a component "
                "of the plan",
                hint="check the path, or `drkit plan show` for component names",
            )
        comp_name = component or p.absolute().name or "root"
        jobs.append(BackupJob(comp_name, "files", str(p), versioned=is_versioned(plan, comp_name)))
    return jobs, skipped


def _with_collections(job: BackupJob, collections: Sequence[str]) -> BackupJob:
    if not collections:
        return job
    if job.kind != "vectors":
        raise UsageError(f"--collection applies to vector stores; {job.component!r} is not one")
    return dataclasses.replace(job, collections=tuple(collections))
