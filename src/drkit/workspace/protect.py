"""Backup and restore of plan components, whatever they hold: one code path for the CLI.

``drkit backup`` and ``drkit snapshot create`` both resolve their arguments with
:func:`backup_jobs` and run them with :func:`run_backup`; ``drkit restore`` and
``drkit snapshot restore`` both call :func:`restore_snapshot`. A job is a file tree (a
local path), an object-store prefix (``s3://...``) or a vector store (an engine URL, one
snapshot per collection, incremental against the newest snapshot of the same component
and collection).

*Due*: ``drkit backup`` with no argument backs up the components that are due — those
without a schedule, without a snapshot yet, or whose schedule's next run after their
newest snapshot is not in the future. ``--all`` ignores the schedules.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from drkit.connectors.objectstore.registry import open_store
from drkit.connectors.vectorstore.registry import (
    is_vector_store_url,
    open_vector_store,
    safe_url,
)
from drkit.errors import DrkitError, InputError, NothingToBackUp, UsageError
from drkit.plan.models import Component, Plan
from drkit.plan.models import VectorStore as VectorStoreModel
from drkit.replication.vectors import (
    replace_collection,
    restore_collection,
    snapshot_collection,
    user_collections,
    vector_snapshots,
)
from drkit.repository import Repository, Snapshot, backup_path, backup_store, restore
from drkit.workspace import harness
from drkit.workspace.versions import find_version, is_versioned, version_label

JobKind = Literal["files", "store", "vectors", "git"]
#: ``progress(job)`` -> a context manager yielding ``advance(n)``
ProgressFor = Callable[["BackupJob"], AbstractContextManager[Callable[[int], None]]]


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


@dataclass(frozen=True, slots=True)
class Skipped:
    component: str
    reason: str
    next_due: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"component": self.component, "reason": self.reason, "next_due": self.next_due}


@dataclass(frozen=True, slots=True)
class BackupItem:
    """One snapshot written; vector snapshots carry their record counts."""

    job: BackupJob
    snapshot: Snapshot
    collection: str | None = None
    stats: dict[str, Any] = field(default_factory=dict)
    warning: str | None = None

    def to_json(self) -> dict[str, Any]:
        out = {**self.snapshot.to_json(), "snapshot": self.snapshot.id}
        if self.job.kind == "vectors":
            out |= {"collection": self.collection, **self.stats, "warning": self.warning}
        return out


def plan_vector_store(plan: Plan | None, name: str) -> VectorStoreModel | None:
    if plan is None:
        return None
    return next((v for v in plan.vector_stores if v.name == name), None)


def _job_for(plan: Plan, comp: Component) -> BackupJob:
    if harness.is_harness(comp):  # a git repository: bundles (drkit.workspace.harness)
        return harness.job_for(plan, comp)
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


def _backupable(comp: Component) -> bool:
    return isinstance(comp, VectorStoreModel) or bool(getattr(comp, "path", None))


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
            if not _backupable(comp):
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


@contextlib.contextmanager
def _no_progress(_job: BackupJob) -> Iterator[Callable[[int], None]]:
    yield lambda _n: None


@dataclass(frozen=True, slots=True)
class BackupResult:
    """What one job did: the snapshots it wrote, nothing (and why), or why it failed."""

    job: BackupJob
    items: tuple[BackupItem, ...] = ()
    error: DrkitError | OSError | None = None
    #: why nothing was written, when nothing was (an empty directory, an empty store)
    nothing: str | None = None
    #: nothing written, and the plan says that is expected (e.g. a store allowed empty):
    #: still shown as "nothing", but not a failure
    nothing_expected: bool = False

    @property
    def status(self) -> Literal["ok", "nothing", "failed"]:
        if self.error is not None:
            return "failed"
        return "ok" if self.items else "nothing"

    @property
    def exit_code(self) -> int:
        """0 when something was protected; 2 for bad input (a missing path); else 1."""
        if self.status == "ok" or (self.status == "nothing" and self.nothing_expected):
            return 0
        return 2 if isinstance(self.error, InputError) else 1

    @property
    def message(self) -> str:
        if self.error is None:
            return self.nothing or "nothing to back up"
        if isinstance(self.error, OSError):
            return f"{self.error.strerror or self.error}: {self.error.filename or self.job.source}"
        return str(self.error)

    def to_json(self) -> list[dict[str, Any]]:
        """One entry per snapshot written, or one entry saying why there is none."""
        if self.items:
            return [{**i.to_json(), "status": "ok"} for i in self.items]
        out: dict[str, Any] = {
            "component": self.job.component,
            "kind": self.job.kind,
            "source": _public_source(self.job),
            "status": self.status,
            "message": self.message,
        }
        hint = getattr(self.error, "hint", None)
        if hint:
            out["hint"] = hint
        return [out]


def _empty_dir(path: Path) -> bool:
    """No file anywhere under ``path`` (empty directories only); stops at the first file."""
    return all(not files for _, _, files in os.walk(path))


def _public_source(job: BackupJob) -> str:
    # an engine URL may carry credentials in its query string: show scheme and path only
    return job.source.split("?", 1)[0]


def backup_each(
    repo: Repository,
    jobs: Sequence[BackupJob],
    *,
    tags: Sequence[str] = (),
    full: bool = False,
    progress: ProgressFor | None = None,
    version: str | None = None,
    into: list[BackupResult] | None = None,
) -> list[BackupResult]:
    """Snapshot each job into ``repo``, every job even when an earlier one failed; the
    results in job order (the CLI prints failures last). Vector stores: one snapshot per
    collection. A job that writes nothing says why (:attr:`BackupResult.nothing`). A
    versioned dataset's snapshot is its next named version, or ``version`` (one job).
    Results are appended to ``into`` as they come, so that a caller interrupted
    (Ctrl-C) can still say what was done."""
    if version is not None and (len(jobs) != 1 or not jobs[0].versioned):
        raise UsageError(
            "--version names the version of one versioned dataset",
            hint="back up one dataset with `versioned: true` in the plan, e.g. "
            "drkit backup train --version v3",
        )
    progress = progress or _no_progress
    out: list[BackupResult] = into if into is not None else []
    for job in jobs:
        try:
            out.append(_run_job(repo, job, tags, full, progress, version))
        except (DrkitError, OSError) as exc:
            out.append(BackupResult(job, error=exc))
    return out


def run_backup(
    repo: Repository,
    jobs: Sequence[BackupJob],
    *,
    tags: Sequence[str] = (),
    full: bool = False,
    progress: ProgressFor | None = None,
) -> list[BackupItem]:
    """:func:`backup_each`, raising the first failure after every job was attempted."""
    results = backup_each(repo, jobs, tags=tags, full=full, progress=progress)
    for r in results:
        if r.error is not None:
            raise r.error
    return [i for r in results for i in r.items]


def _run_job(
    repo: Repository,
    job: BackupJob,
    tags: Sequence[str],
    full: bool,
    progress: ProgressFor,
    version: str | None = None,
) -> BackupResult:
    meta = {"version": version_label(repo, job.component, version)} if job.versioned else {}
    if job.kind == "files":
        src = Path(job.source)
        if not src.exists():
            where = f" ({job.origin})" if job.origin else ""
            raise InputError(
                f"{src} does not exist{where}",
                hint="create it, or fix the path in the plan" if job.origin else "check the path",
            )
        if src.is_dir() and _empty_dir(src):
            return BackupResult(job, nothing=f"nothing to back up: {src} holds no file")
    if job.kind == "git":
        return harness.run_job(repo, job, tags, full)
    with progress(job) as advance:
        if job.kind == "files":
            snap = backup_path(
                repo,
                Path(job.source),
                component=job.component,
                tags=tuple(tags),
                meta=meta,
                progress=advance,
            )
            return BackupResult(job, (BackupItem(job, snap),))
        if job.kind == "store":
            snap = backup_store(
                repo,
                open_store(job.source),
                component=job.component,
                tags=tuple(tags),
                meta=meta,
                progress=advance,
            )
            return BackupResult(job, (BackupItem(job, snap),))
        items = _backup_vectors(repo, job, tags, full, advance)
        nothing = None if items else "nothing to back up: the store has no collections"
        # allow_empty: the plan says an empty store is expected, shown but not a failure
        return BackupResult(job, tuple(items), nothing=nothing, nothing_expected=job.allow_empty)


def _backup_vectors(
    repo: Repository,
    job: BackupJob,
    tags: Sequence[str],
    full: bool,
    advance: Callable[[int], None],
) -> list[BackupItem]:
    out = []
    # create=False: a backup never creates the store it backs up (a mistyped path)
    with open_vector_store(job.source, create=False) as store:
        for coll in _collections_to_back_up(job, user_collections(store)):
            res = snapshot_collection(
                repo,
                store,
                coll,
                component=job.component,
                full=full,
                tags=tuple(tags),
                progress=advance,
            )
            stats = {
                "records": res.records,
                "added": res.added,
                "changed": res.changed,
                "deleted": res.deleted,
                "unchanged": res.unchanged,
                "bytes_stored": res.snapshot.summary["new_bytes_stored"],
                "export_s": res.export_s,
                "pipeline_s": res.pipeline_s,
            }
            out.append(BackupItem(job, res.snapshot, coll, stats, res.warning))
    return out


def _collections_to_back_up(job: BackupJob, present: Sequence[str]) -> list[str]:
    """The job's collections; none, or one missing, fails unless ``job.allow_empty``."""
    wanted = list(job.collections or present)
    missing = [c for c in wanted if c not in present]
    if job.allow_empty:
        return [c for c in wanted if c in present]
    if missing:
        raise NothingToBackUp(
            f"{job.component}: no collection {', '.join(map(repr, missing))} in "
            f"{safe_url(job.source)} (it has: {', '.join(present) or 'none'})"
        )
    if not wanted:
        raise NothingToBackUp(
            f"{job.component}: {safe_url(job.source)} has no collections to back up"
        )
    return wanted


# --- restore ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RestoreOutcome:
    snapshot: str
    kind: str
    target: str
    duration_s: float
    collection: str | None = None
    records: int | None = None
    files: int | None = None
    bytes: int | None = None
    #: ``--replace``: what was done to the live collection (ReplaceReport.to_json())
    replaced: dict[str, Any] | None = None
    #: git (harness) snapshots: the refs restored and the commit HEAD names
    refs: int | None = None
    commit: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "snapshot": self.snapshot,
            "kind": self.kind,
            "target": self.target,
            "duration_s": self.duration_s,
        }
        if self.kind == "vectors":
            out |= {"collection": self.collection, "records": self.records}
            if self.replaced is not None:
                out["replaced"] = self.replaced
        elif self.kind == "git":
            out |= {"refs": self.refs, "commit": self.commit, "bytes": self.bytes}
        else:
            out |= {"files": self.files, "bytes": self.bytes}
        return out


def vector_target(plan: Plan | None, to: str) -> tuple[str, VectorStoreModel | None]:
    """A restore target for a vector snapshot: a plan vector store or an engine URL."""
    comp = plan_vector_store(plan, to)
    if comp is not None:
        return str(comp.engine), comp
    if is_vector_store_url(to):
        return to, None
    raise UsageError(
        f"--to {to!r} is neither a vector store of the plan nor a vector store URL",
        hint="a vector snapshot restores into a plan vector-store COMPONENT or an engine URL "
        "like lancedb:///path, qdrant+local:///path or postgresql://user@host:5432/db",
    )


def _latest_of_collection(
    repo: Repository, component: str | None, collection: str | None
) -> Snapshot | None:
    """``latest`` of a vector component with several collections: the newest snapshot of
    ``collection`` (refused when it names none of them: which one is meant?)."""
    if component is None:
        return None
    snaps = vector_snapshots(repo, component)
    names = sorted({str(s.meta.get("collection")) for s in snaps})
    if len(names) < 2:
        return None  # one collection: --collection may rename it
    if collection in names:
        return vector_snapshots(repo, component, collection)[-1]
    raise UsageError(
        f"component {component!r} has snapshots of {len(names)} collections "
        f"({', '.join(names)}): `latest` of which?",
        hint=f"name it with --collection {names[0]}, or restore a snapshot id",
    )


def restore_snapshot(
    repo: Repository,
    ref: str,
    to: str,
    *,
    plan: Plan | None = None,
    component: str | None = None,
    collection: str | None = None,
    progress: Callable[[Snapshot], AbstractContextManager[Callable[[int], None]]] | None = None,
    replace: bool = False,
) -> RestoreOutcome:
    """Restore snapshot ``ref`` (id, prefix, ``latest``, or ``DATASET@VERSION``, a named
    version of a versioned dataset) into ``to``.

    A vector snapshot goes into a vector store (``to`` = plan component or engine URL),
    as ``collection`` (default: the snapshotted name), atomically; a config the target
    cannot hold and an existing collection are refused before anything is written. A
    file-tree snapshot goes into the new (or empty) directory ``to``, atomically.
    ``latest`` with no ``component`` means the newest snapshot of the plan component
    ``to`` names, if it names one. ``replace``: the collection may exist; the restored
    copy is verified, then swapped in (:func:`~drkit.replication.vectors.replace_collection`).
    """
    if ref == "latest" and component is None and plan is not None:
        with contextlib.suppress(KeyError):
            component = plan.component(to).name
    if ref == "latest" and component is None:
        from drkit.state.store import STATE_COMPONENT

        names = sorted({s.component for s in repo.snapshots()} - {STATE_COMPONENT})
        if len(names) > 1:  # the newest of any component is a guess, not an answer
            raise UsageError(
                f"'latest' is ambiguous: the repository has snapshots of {len(names)} "
                f"components ({', '.join(names)})",
                hint=f"name one: --component {names[0]}",
            )
        if names:  # drkit's own state snapshots are restored by `drkit state restore`
            component = names[0]
    if "@" in ref:
        snap = find_version(repo, ref)
    else:
        latest = _latest_of_collection(repo, component, collection) if ref == "latest" else None
        snap = latest or repo.find_snapshot(ref, component)
    bar = progress or (lambda _s: _no_progress(BackupJob("", "files", "")))
    if snap.kind == harness.KIND:
        return harness.restore_outcome(repo, snap, to, replace=replace, collection=collection)
    if snap.kind == "vectors":
        url, _ = vector_target(plan, to)
        with open_vector_store(url) as store, bar(snap) as advance:
            if replace:
                swapped = replace_collection(repo, snap, store, collection, progress=advance)
                return RestoreOutcome(
                    swapped.snapshot,
                    "vectors",
                    swapped.target,
                    swapped.duration_s,
                    swapped.collection,
                    swapped.records,
                    replaced=swapped.to_json(),
                )
            rep = restore_collection(repo, snap, store, collection, progress=advance)
        return RestoreOutcome(
            rep.snapshot, "vectors", rep.target, rep.duration_s, rep.collection, rep.records
        )
    if replace:
        raise UsageError(
            f"snapshot {snap.short_id} is a {snap.kind} snapshot: --replace applies to "
            "vector snapshots",
            hint="restore a file tree into a new or empty directory, without --replace",
        )
    if collection is not None:
        raise UsageError(
            f"snapshot {snap.short_id} is a {snap.kind} snapshot: --collection applies to "
            "vector snapshots",
            hint="drop --collection",
        )
    if is_vector_store_url(to) or plan_vector_store(plan, to) is not None:
        raise UsageError(
            f"snapshot {snap.short_id} of {snap.component!r} is a {snap.kind} snapshot; "
            f"--to {to!r} is a vector store",
            hint="restore a file-tree snapshot into a new or empty directory: --to DIR",
        )
    with bar(snap) as advance:
        res = restore(repo, snap, Path(to), progress=advance)
    return RestoreOutcome(
        res.snapshot, snap.kind, res.target, res.duration_s, files=res.files, bytes=res.bytes
    )
