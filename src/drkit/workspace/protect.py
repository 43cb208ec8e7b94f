"""Backup of plan components, whatever they hold: one code path for the CLI.

``drkit backup`` and ``drkit snapshot create`` both resolve their arguments with
:func:`~drkit.workspace.backup_jobs.backup_jobs` and run them with :func:`backup_each` /
:func:`run_backup`; ``drkit restore`` and ``drkit snapshot restore`` both call
:func:`~drkit.workspace.restore.restore_snapshot`. A job is a file tree (a local path), an
object-store prefix (``s3://...``) or a vector store (an engine URL, one snapshot per
collection, incremental against the newest snapshot of the same component and collection).

The jobs' resolution (and what is *due*) lives in :mod:`drkit.workspace.backup_jobs`, the
restore in :mod:`drkit.workspace.restore`; their names stay importable from here.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from drkit.connectors.mlflow import public_uri
from drkit.connectors.objectstore.registry import open_store
from drkit.connectors.vectorstore.registry import open_vector_store, safe_url
from drkit.errors import DrkitError, InputError, NothingToBackUp, UsageError
from drkit.lineage.openlineage import BACKUP, Emitter, Run
from drkit.replication.vectors import snapshot_collection, user_collections
from drkit.repository import Repository, Snapshot, backup_path, backup_store
from drkit.workspace import harness, mlflow_registry
from drkit.workspace.backup_jobs import (
    BackupJob,
    JobKind,
    Skipped,
    backup_jobs,
    backupable,
    due,
    plan_vector_store,
)
from drkit.workspace.restore import RestoreOutcome, restore_snapshot, vector_target
from drkit.workspace.versions import version_label

__all__ = [
    "BackupItem",
    "BackupJob",
    "BackupResult",
    "JobKind",
    "ProgressFor",
    "RestoreOutcome",
    "Skipped",
    "backup_each",
    "backup_jobs",
    "backupable",
    "due",
    "plan_vector_store",
    "restore_snapshot",
    "run_backup",
    "vector_target",
]

#: ``progress(job)`` -> a context manager yielding ``advance(n)``
ProgressFor = Callable[[BackupJob], AbstractContextManager[Callable[[int], None]]]

#: the old private name, still imported by drkit.agent (jobs.py, rpo.py)
_backupable = backupable


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
    # an engine URL may carry credentials in its query string (a tracking URI in its
    # user part): show scheme, host and path only
    return public_uri(job.source) if job.kind == "mlflow" else job.source.split("?", 1)[0]


def backup_each(
    repo: Repository,
    jobs: Sequence[BackupJob],
    *,
    tags: Sequence[str] = (),
    full: bool = False,
    progress: ProgressFor | None = None,
    version: str | None = None,
    into: list[BackupResult] | None = None,
    lineage: Emitter | None = None,
) -> list[BackupResult]:
    """Snapshot each job into ``repo``, every job even when an earlier one failed; the
    results in job order (the CLI prints failures last). Vector stores: one snapshot per
    collection. A job that writes nothing says why (:attr:`BackupResult.nothing`). A
    versioned dataset's snapshot is its next named version, or ``version`` (one job).
    Results are appended to ``into`` as they come, so that a caller interrupted
    (Ctrl-C) can still say what was done. Each job is one OpenLineage run of
    ``backup.COMPONENT`` on ``lineage`` (its snapshots the outputs; never fails a job)."""
    if version is not None and (len(jobs) != 1 or not jobs[0].versioned):
        raise UsageError(
            "--version names the version of one versioned dataset",
            hint="back up one dataset with `versioned: true` in the plan, e.g. "
            "drkit backup train --version v3",
        )
    progress = progress or _no_progress
    out: list[BackupResult] = into if into is not None else []
    lineage = lineage or Emitter(None)
    for job in jobs:
        with lineage.running(f"backup.{job.component}", BACKUP) as run:
            try:
                out.append(_run_job(repo, job, tags, full, progress, version))
            except (DrkitError, OSError) as exc:
                out.append(BackupResult(job, error=exc))
            _end_run(lineage, run, out[-1])
    return out


def _end_run(lineage: Emitter, run: Run, result: BackupResult) -> None:
    """COMPLETE with the snapshots written, or FAIL when the job failed its caller."""
    if not lineage.enabled:
        return
    if result.exit_code != 0:
        run.fail(result.message)
        return
    run.complete(
        outputs=[
            lineage.snapshot_output(i.snapshot, i.collection, i.stats.get("records"))
            for i in result.items
        ]
    )


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
    if job.kind == "git":
        return harness.run_job(repo, job, tags, full)
    if job.kind == "mlflow":
        return mlflow_registry.run_job(repo, job, tags)
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
