"""Restore of a snapshot, whatever it holds: one code path for ``drkit restore`` and
``drkit snapshot restore`` (:func:`restore_snapshot`).

A vector snapshot goes into a vector store (a plan component or an engine URL), a
file-tree or object-store snapshot into a new or empty directory; both atomically. An
MLflow registry snapshot goes into another MLflow (:mod:`drkit.workspace.mlflow_restore`).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from drkit.connectors.vectorstore.base import VectorStore, exists_error
from drkit.connectors.vectorstore.registry import is_vector_store_url, open_vector_store
from drkit.errors import UsageError
from drkit.plan.models import Plan
from drkit.plan.models import VectorStore as VectorStoreModel
from drkit.replication.vectors import (
    plan_restore,
    replace_collection,
    restore_collection,
    vector_snapshots,
)
from drkit.repository import Repository, Snapshot, restore
from drkit.workspace import harness
from drkit.workspace.backup_jobs import plan_vector_store
from drkit.workspace.versions import find_version


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
    #: vectors: what the target engine could not carry (worked out before any write)
    not_carried: tuple[str, ...] = ()
    #: ``--dry-run``: nothing was written; ``plan`` says what a restore would do
    dry_run: bool = False
    plan: dict[str, Any] | None = None
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
            out |= {
                "collection": self.collection,
                "records": self.records,
                "not_carried": list(self.not_carried),
                "dry_run": self.dry_run,
            }
            if self.replaced is not None:
                out["replaced"] = self.replaced
            if self.plan is not None:
                out["plan"] = self.plan
        elif self.kind == "mlflow":
            out |= {
                "files": self.files,
                "bytes": self.bytes,
                "not_carried": list(self.not_carried),
                "dry_run": self.dry_run,
                **(self.plan or {}),
            }
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
    dry_run: bool = False,
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
    ``dry_run`` (vectors): write nothing; say what a restore would do and what the target
    engine could not carry (:func:`~drkit.replication.vectors.plan_restore`).
    """
    if ref == "latest" and component is None:
        component = _latest_component(repo, plan, to)
    if "@" in ref:
        snap = find_version(repo, ref)
    else:
        latest = _latest_of_collection(repo, component, collection) if ref == "latest" else None
        snap = latest or repo.find_snapshot(ref, component)
    bar = progress or _no_progress
    if snap.kind == "vectors":
        url, _ = vector_target(plan, to)
        if dry_run:
            return _plan_vectors(repo, snap, url, collection, replace=replace)
        with open_vector_store(url) as store, bar(snap) as advance:
            return _restore_vectors(repo, snap, store, collection, advance, replace=replace)
    if snap.kind == "mlflow":  # a registry, rebuilt in another (empty) MLflow
        return _restore_mlflow(repo, snap, to, plan, collection, replace, dry_run)
    _refuse_vector_options(snap, to, plan, collection=collection, replace=replace, dry_run=dry_run)
    if snap.kind == harness.KIND:  # a git repository, cloned from its bundles
        return harness.restore_outcome(repo, snap, to)
    with bar(snap) as advance:
        res = restore(repo, snap, Path(to), progress=advance)
    return RestoreOutcome(
        res.snapshot, snap.kind, res.target, res.duration_s, files=res.files, bytes=res.bytes
    )


def _restore_mlflow(
    repo: Repository,
    snap: Snapshot,
    to: str,
    plan: Plan | None,
    collection: str | None,
    replace: bool,
    dry_run: bool,
) -> RestoreOutcome:
    from drkit.workspace.mlflow_restore import registry_target, restore_registry

    if replace or collection is not None:
        option = "--replace" if replace else "--collection"
        raise UsageError(
            f"snapshot {snap.short_id} is an MLflow registry snapshot: {option} applies to "
            "vector snapshots",
            hint=f"drop {option}; a registry restores into an MLflow without the snapshot's models",
        )
    res = restore_registry(repo, snap, registry_target(plan, to), dry_run=dry_run)
    return RestoreOutcome(
        res.snapshot,
        "mlflow",
        res.target,
        res.duration_s,
        files=res.files,
        bytes=res.bytes,
        not_carried=res.not_carried,
        dry_run=res.dry_run,
        plan={"models": res.models, "run_id": res.run_id},
    )


def _latest_component(repo: Repository, plan: Plan | None, to: str) -> str | None:
    """The component ``latest`` means when none is named: the plan component ``to``
    names, else the repository's only component (refused when there are several)."""
    if plan is not None:
        with contextlib.suppress(KeyError):
            return plan.component(to).name
    from drkit.state.store import STATE_COMPONENT

    names = sorted({s.component for s in repo.snapshots()} - {STATE_COMPONENT})
    if len(names) > 1:  # the newest of any component is a guess, not an answer
        raise UsageError(
            f"'latest' is ambiguous: the repository has snapshots of {len(names)} "
            f"components ({', '.join(names)})",
            hint=f"name one: --component {names[0]}",
        )
    # drkit's own state snapshots are restored by `drkit state restore`
    return names[0] if names else None


def _restore_vectors(
    repo: Repository,
    snap: Snapshot,
    store: VectorStore,
    collection: str | None,
    advance: Callable[[int], None],
    *,
    replace: bool,
) -> RestoreOutcome:
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
            not_carried=swapped.not_carried,
        )
    rep = restore_collection(repo, snap, store, collection, progress=advance)
    return RestoreOutcome(
        rep.snapshot,
        "vectors",
        rep.target,
        rep.duration_s,
        rep.collection,
        rep.records,
        not_carried=rep.not_carried,
    )


def _plan_vectors(
    repo: Repository, snap: Snapshot, url: str, collection: str | None, *, replace: bool
) -> RestoreOutcome:
    """``--dry-run``: what a restore of ``snap`` into ``url`` would do; nothing written."""
    with open_vector_store(url) as store:
        would = plan_restore(repo, snap, store, collection)
    if would.exists and not replace:
        raise exists_error(would.collection)
    return RestoreOutcome(
        would.snapshot,
        "vectors",
        would.target,
        0.0,
        would.collection,
        would.records,
        not_carried=would.not_carried,
        dry_run=True,
        plan={**dataclasses.asdict(would), "replace": replace},
    )


def _refuse_vector_options(
    snap: Snapshot,
    to: str,
    plan: Plan | None,
    *,
    collection: str | None,
    replace: bool,
    dry_run: bool = False,
) -> None:
    """A file-tree snapshot: refuse the options and targets that are a vector restore's."""
    if dry_run:
        raise UsageError(
            f"snapshot {snap.short_id} is a {snap.kind} snapshot: --dry-run applies to "
            "vector snapshots",
            hint="restore a file tree into a new or empty directory, without --dry-run",
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


@contextlib.contextmanager
def _no_progress(_snap: Snapshot) -> Iterator[Callable[[int], None]]:
    yield lambda _n: None
