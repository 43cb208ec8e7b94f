"""Eval harness code: a git repository backed up as git bundles (docs/evals.md#the-eval-harness).

A snapshot of a ``harnesses`` component holds one file, ``harness.bundle``: ``git bundle
create --all`` of every ref, minus (``^<commit>``) the commits the parent snapshot's refs
already named, so each snapshot stores only the new history; the manifest's ``meta``
keeps every ref and HEAD, so a snapshot whose refs moved to commits already stored needs
no bundle at all. The repository stores the bundle like any file: chunked,
content-addressed, encrypted. A restore clones the chain's first (full) bundle, fetches
the others in order after ``git bundle verify`` of each, then sets the refs and HEAD to
exactly the snapshot's. An eval run records the harness commit it ran with
(:func:`harness_commit`); the gate refuses to compare runs of different commits unless
told to.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from drkit.connectors import git
from drkit.errors import DrkitError, InputError, SnapshotNotFound
from drkit.plan.models import Component, Harness, Plan
from drkit.repository import Repository, Snapshot, read_file, snapshot_files
from drkit.workspace.scratch_test import ScratchCheck, scratch_restore_test

if TYPE_CHECKING:
    from drkit.workspace.backup_jobs import BackupJob
    from drkit.workspace.protect import BackupResult
    from drkit.workspace.restore import RestoreOutcome

KIND = "git"
BUNDLE = "harness.bundle"


class BrokenChain(DrkitError):
    """An incremental harness snapshot whose parent is gone (exit 1)."""


def is_harness(comp: object) -> bool:
    return isinstance(comp, Harness)


def _parent(repo: Repository, component: str) -> Snapshot | None:
    snaps = [s for s in repo.snapshots(component) if s.kind == KIND]
    return snaps[-1] if snaps else None


def backup_harness(
    repo: Repository,
    component: str,
    path: Path,
    *,
    tags: Sequence[str] = (),
    full: bool = False,
    origin: str | None = None,
    meta: dict[str, Any] | None = None,
) -> Snapshot | None:
    """Snapshot the git repository at ``path``; None when it has no commit yet (nothing
    to back up). ``full``: one bundle of the whole history, no parent."""
    git.require_repository(path, origin)
    refs = git.refs(path)
    if not refs:
        return None
    head_ref, head_commit = git.head(path)
    parent = None if full else _parent(repo, component)
    exclude = sorted(set(parent.meta.get("refs", {}).values())) if parent else []
    with tempfile.TemporaryDirectory(prefix="drkit-bundle-") as tmp:
        out = Path(tmp) / BUNDLE
        has_bundle = git.create_bundle(path, out, exclude)
        files = {BUNDLE: out.read_bytes()} if has_bundle else {}
        if has_bundle:  # a ref that moved since it was read: the bundle's tip is the one
            refs |= git.bundle_heads(out)
    return snapshot_files(
        repo,
        component,
        files,
        source=str(path),
        kind=KIND,
        tags=tuple(tags),
        parent=parent.id if parent else None,
        meta={
            **(meta or {}),
            "refs": refs,
            "head_ref": head_ref,
            "head_commit": head_commit,
            "full": parent is None,
            "bundle": has_bundle,
        },
    )


def chain(repo: Repository, snap: Snapshot) -> list[Snapshot]:
    """The snapshots whose bundles rebuild ``snap``: its full ancestor first."""
    out = [snap]
    while not out[-1].meta.get("full", True) and out[-1].parent:
        try:
            out.append(repo.find_snapshot(out[-1].parent))
        except SnapshotNotFound:
            raise BrokenChain(
                f"harness snapshot {snap.short_id} of {snap.component!r} needs its parent "
                f"{out[-1].parent[:8]}, which is no longer in the repository",
                hint=f"take a full snapshot: drkit backup {snap.component} --full",
            ) from None
    return out[::-1]


@dataclass(frozen=True, slots=True)
class HarnessRestore:
    snapshot: str
    target: str
    duration_s: float
    bundles: int
    refs: int
    commit: str | None
    files: int = 0
    bytes: int = 0


def restore_harness(repo: Repository, snap: Snapshot, target: Path) -> HarnessRestore:
    """Clone snapshot ``snap`` (and its chain) into the new or empty directory ``target``;
    nothing is left at ``target`` when it fails."""
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise InputError(
            f"{target} exists and is not empty", hint="restore into a new or empty directory"
        )
    started = time.monotonic()
    snaps = chain(repo, snap)
    target.parent.mkdir(parents=True, exist_ok=True)
    work = target.parent / f".{target.name}.drkit-{uuid.uuid4().hex[:8]}"
    size = 0
    try:
        with tempfile.TemporaryDirectory(prefix="drkit-bundle-") as tmp:
            bundles: list[Path] = []
            for i, s in enumerate(snaps):
                if s.meta.get("bundle"):
                    p = Path(tmp) / f"{i:05d}.bundle"
                    data = read_file(repo, s, BUNDLE)  # every blob hash-checked
                    size += len(data)
                    p.write_bytes(data)
                    bundles.append(p)
            if not bundles:
                raise BrokenChain(f"harness snapshot {snap.short_id} holds no bundle")
            git.clone_bundle(bundles[0], work)
            for b in bundles:
                git.verify_bundle(b, work)
                git.fetch_bundle(work, b)
        wanted = {str(k): str(v) for k, v in snap.meta.get("refs", {}).items()}
        git.set_refs(work, wanted, snap.meta.get("head_ref"), snap.meta.get("head_commit"))
        got = git.refs(work)
        if got != wanted:
            missing = sorted(set(wanted.items()) - set(got.items()))
            raise BrokenChain(f"restored refs differ from the snapshot's: {missing[:3]}")
        if target.exists():
            target.rmdir()
        os.replace(work, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return HarnessRestore(
        snap.id,
        str(target),
        round(time.monotonic() - started, 3),
        len(bundles),
        len(wanted),
        snap.meta.get("head_commit"),
        bytes=size,
    )


def restore_test(
    repo: Repository, component: str, scratch: Path, *, mark: bool = True
) -> ScratchCheck:
    """Restore the newest snapshot of ``component`` into scratch, ``git fsck`` it, compare
    its refs; a good one is marked verified. The scratch clone is always removed."""

    def clone(snap: Snapshot, target: Path) -> tuple[dict[str, Any], list[str]]:
        res = restore_harness(repo, snap, target)
        problems = git.fsck(target)
        return {"bundles": res.bundles, "refs": res.refs, "commit": res.commit}, problems

    def describe(d: dict[str, Any]) -> str:
        return f"{d['refs']} refs from {d['bundles']} bundles, HEAD {str(d['commit'])[:12]}"

    return scratch_restore_test(repo, component, scratch, KIND, clone, describe, mark=mark)


def harness_commit(plan: Plan | None) -> dict[str, Any]:
    """What an eval run records of the plan's first harness: ``harness``,
    ``harness_commit`` (HEAD) and ``harness_dirty``; empty without one. A harness path
    that is not a git repository is bad input (exit 2)."""
    if plan is None or not plan.harnesses:
        return {}
    comp = plan.harnesses[0]
    path = plan.resolve_path(comp.path)
    loc = plan.locate("harnesses", 0, "path")
    origin = (f"{loc.file}:{loc.line} " if loc.file and loc.line else "") + loc.field
    git.require_repository(path, origin)
    _, commit = git.head(path)
    return {
        "harness": comp.name,
        "harness_commit": commit,
        "harness_dirty": git.is_dirty(path),
    }


# --- the hooks of drkit.workspace.protect (backup and restore of any component) --------


def job_for(plan: Plan, comp: Component) -> BackupJob:
    from drkit.workspace.backup_jobs import BackupJob

    loc = next((plan.locate(*p, "path") for p, c in plan.components() if c is comp), None)
    origin = None
    if loc is not None:
        origin = (f"{loc.file}:{loc.line} " if loc.file and loc.line else "") + loc.field
    path = str(getattr(comp, "path", ""))
    return BackupJob(comp.name, "git", str(plan.resolve_path(path)), origin=origin)


def run_job(repo: Repository, job: BackupJob, tags: Sequence[str], full: bool) -> BackupResult:
    from drkit.workspace.protect import BackupItem, BackupResult

    snap = backup_harness(
        repo, job.component, Path(job.source), tags=tags, full=full, origin=job.origin
    )
    if snap is None:
        return BackupResult(job, nothing=f"nothing to back up: {job.source} has no commit")
    return BackupResult(job, (BackupItem(job, snap),))


def restore_outcome(repo: Repository, snap: Snapshot, to: str) -> RestoreOutcome:
    """:func:`restore_harness` for :func:`drkit.workspace.restore.restore_snapshot` (the
    vector-only options were refused there)."""
    from drkit.workspace.restore import RestoreOutcome

    res = restore_harness(repo, snap, Path(to))
    return RestoreOutcome(
        res.snapshot,
        KIND,
        res.target,
        res.duration_s,
        bytes=res.bytes,
        refs=res.refs,
        commit=res.commit,
    )
