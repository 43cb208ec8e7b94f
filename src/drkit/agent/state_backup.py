"""drkit's own state as data: snapshots of the state database in the repository.

The state (events, restore verifications, drill journals, the agent's run history) is
copied with SQLite's online backup API — consistent while other processes keep writing
— and stored as an ordinary single-file snapshot of the component :data:`STATE_COMPONENT`
(tag :data:`STATE_TAG`). Like any snapshot it is encrypted, verified on read, listed by
``drkit snapshots``, and copied to replicas by ``drkit copy`` and the agent's copy jobs.

A lost state is rebuilt from a repository and its key alone (no plan needed):
:func:`restore_state` takes the newest state snapshot, checks it is an intact drkit state
database, and renames it into place. It never replaces an existing state unless told to.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from drkit.errors import InputError, UsageError
from drkit.repository import Repository
from drkit.repository.files import backup_path
from drkit.repository.maintenance import forget
from drkit.repository.restore import restore
from drkit.repository.retention import Policy
from drkit.repository.snapshot import Snapshot
from drkit.state.store import STATE_COMPONENT, describe_location, is_state_url
from drkit.state.transfer import check_state_file, copy_state

__all__ = ["STATE_COMPONENT", "restore_state", "snapshot_state"]

STATE_TAG = "drkit-state"
#: The agent keeps this many state snapshots (the newest), plus one per day for a week.
STATE_KEEP = Policy(keep_last=24, keep_daily=7)


@dataclass(frozen=True)
class StateBackup:
    snapshot: Snapshot
    events: int
    source: str

    def to_json(self) -> dict[str, Any]:
        return {
            "snapshot": self.snapshot.id,
            "time": self.snapshot.time,
            "events": self.events,
            "source": self.source,
        }


def snapshot_state(repo: Repository, state_path: Path | str) -> StateBackup:
    """A consistent copy of the state at ``state_path`` (a file, or a ``postgresql://``
    URL), snapshotted into ``repo``."""
    where = describe_location(state_path)
    local = None if is_state_url(state_path) else _writable_dir(Path(state_path))
    work = Path(tempfile.mkdtemp(prefix=".state-backup-", dir=local))
    try:
        copy = work / "state.db"
        events = copy_state(state_path, copy)
        snap = backup_path(
            repo,
            copy,
            component=STATE_COMPONENT,
            tags=(STATE_TAG,),
            parent=None,
            meta={"drkit_state": {"events": events, "path": where}},
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return StateBackup(snap, events, where)


def _writable_dir(state_path: Path) -> Path | None:
    parent = state_path.parent
    return parent if parent.is_dir() and os.access(parent, os.W_OK) else None


def prune_state_snapshots(repo: Repository) -> int:
    """Forget state snapshots beyond :data:`STATE_KEEP`; returns how many went."""
    return len(forget(repo, STATE_KEEP, components=[STATE_COMPONENT]).removed)


def newest_state_snapshot(repo: Repository, where: str) -> Snapshot:
    snaps = repo.snapshots(STATE_COMPONENT)
    if not snaps:
        raise InputError(
            f"the repository {where} holds no snapshot of drkit's state",
            hint="run `drkit state backup` (or `drkit agent run`, which backs it up) first",
        )
    return snaps[-1]


@dataclass(frozen=True)
class StateRestore:
    snapshot: Snapshot
    path: str
    events: int
    replaced: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "snapshot": self.snapshot.id,
            "time": self.snapshot.time,
            "path": self.path,
            "events": self.events,
            "replaced": self.replaced,
        }


def _pick(repo: Repository, where: str, snapshot: str | None) -> Snapshot:
    if snapshot is None:
        return newest_state_snapshot(repo, where)
    snap = repo.find_snapshot(snapshot)
    if snap.component != STATE_COMPONENT:
        raise UsageError(
            f"snapshot {snap.short_id} is of {snap.component!r}, not of drkit's state",
            hint="`drkit snapshots drkit-state` lists the state snapshots",
        )
    return snap


def _restored_file(repo: Repository, snap: Snapshot, out: Path) -> tuple[Path, int]:
    """The snapshot's one SQLite file restored under ``out``, checked; its event count."""
    restore(repo, snap, out)
    files = [p for p in out.rglob("*") if p.is_file()]
    if len(files) != 1:
        raise InputError(f"state snapshot {snap.short_id} holds {len(files)} files, not 1")
    db = sqlite3.connect(str(files[0]))
    try:
        events = check_state_file(db, f"state snapshot {snap.short_id}")
    finally:
        db.close()
    return files[0], events


def restore_state(
    repo: Repository,
    dest: Path | str,
    *,
    where: str,
    force: bool = False,
    snapshot: str | None = None,
) -> StateRestore:
    """Rebuild the state at ``dest`` from the newest state snapshot of ``repo`` (or
    ``snapshot``). ``UsageError`` when a state exists at ``dest`` and not ``force``;
    ``InputError`` when the repository has no state snapshot. Atomic: a SQLite ``dest``
    is replaced only once the restored database passed its integrity check; a
    ``postgresql://`` one is refilled in one transaction."""
    if is_state_url(dest):
        return _restore_into_database(repo, str(dest), where=where, force=force, snapshot=snapshot)
    dest = Path(dest)
    existed = dest.exists()
    if existed and not force:
        raise UsageError(
            f"a drkit state already exists at {dest}: not overwritten",
            hint="pass --force to replace it, or set DRKIT_STATE to another path",
        )
    snap = _pick(repo, where, snapshot)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(
            f"cannot create the state directory {dest.parent}: {exc.strerror}",
            hint="set DRKIT_STATE to a writable path",
        ) from exc
    work = Path(tempfile.mkdtemp(prefix=".state-restore-", dir=dest.parent))
    try:
        restored, events = _restored_file(repo, snap, work / "restored")
        for suffix in ("-wal", "-shm"):  # an old WAL must never be replayed on the new file
            Path(str(dest) + suffix).unlink(missing_ok=True)
        os.replace(restored, dest)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return StateRestore(snap, str(dest), events, existed)


def _restore_into_database(
    repo: Repository, url: str, *, where: str, force: bool, snapshot: str | None
) -> StateRestore:
    from drkit.state.store import StateStore
    from drkit.state.transfer import load_state

    target = StateStore(url)
    try:
        existed = bool(target.events(limit=1) or target.verifications() or target.drills())
        if existed and not force:
            raise UsageError(
                f"the drkit state {target.where} already holds records: not overwritten",
                hint="pass --force to replace it, or set DRKIT_STATE to another database",
            )
        snap = _pick(repo, where, snapshot)
        work = Path(tempfile.mkdtemp(prefix="drkit-state-restore-"))
        try:
            restored, _ = _restored_file(repo, snap, work / "restored")
            events = load_state(target, restored, replace=force)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return StateRestore(snap, target.where, events, existed)
    finally:
        target.close()
