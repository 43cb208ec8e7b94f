"""File-tree data for the data scenarios: fingerprints, the restore test, diffs.

A *fingerprint* of a directory is ``{relative path: sha256 of the content}``. The
restore test restores a snapshot into scratch (the repository checks every blob's
hash as it reads), fingerprints the result, checks it against the snapshot's manifest
(file count and bytes) and, when the live source still matches, against the source;
the fingerprint is stored with the verification record (``mark_verified``), so a later
corruption is detected against the newest *verified* snapshot without a restore.

Vector collections get the same treatment in :mod:`drkit.drills.vectors`: fingerprint =
count plus per-record checksums, compared with the verified snapshot's index.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from drkit.errors import DrillError
from drkit.plan.models import Component, Plan
from drkit.repository import Repository, read_file, restore
from drkit.repository.files import list_files
from drkit.repository.snapshot import Snapshot

Fingerprint = dict[str, str]


def file_components(plan: Plan) -> list[Component]:
    """Components with a directory drkit snapshots as files (a harness is a git
    repository, snapshotted as bundles: drkit.workspace.harness)."""
    return [c for _, c in plan.components() if getattr(c, "path", None) and c.kind != "harness"]


def component_path(plan: Plan, comp: Component) -> Path:
    path = getattr(comp, "path", None)
    if not path:
        raise DrillError(f"component {comp.name!r} has no path")
    return plan.resolve_path(str(path))


def fingerprint(root: Path) -> Fingerprint:
    """``{relative/path: sha256}`` of every regular file under ``root``."""
    out: Fingerprint = {}
    if root.is_file():
        return {root.name: _sha256(root)}
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            p = Path(dirpath) / name
            if p.is_file() and not p.is_symlink():
                out[p.relative_to(root).as_posix()] = _sha256(p)
    return out


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def snapshot_fingerprint(repo: Repository, snap: Snapshot) -> Fingerprint:
    """The fingerprint of a snapshot, read from the repository (hash-checked on read)."""
    out: Fingerprint = {}
    for path, node in list_files(repo, snap):
        if node["type"] == "file":
            out[path] = hashlib.sha256(read_file(repo, snap, path)).hexdigest()
    return out


@dataclass(frozen=True, slots=True)
class Diff:
    """How ``current`` differs from a ``base`` fingerprint."""

    added: tuple[str, ...]
    changed: tuple[str, ...]
    removed: tuple[str, ...]

    @property
    def total(self) -> int:
        return len(self.added) + len(self.changed) + len(self.removed)

    @property
    def damaged(self) -> int:
        """Files of the base that are gone or altered (what corruption looks like)."""
        return len(self.changed) + len(self.removed)


def diff(base: Mapping[str, str], current: Mapping[str, str]) -> Diff:
    return Diff(
        added=tuple(sorted(set(current) - set(base))),
        changed=tuple(sorted(p for p in base if p in current and current[p] != base[p])),
        removed=tuple(sorted(set(base) - set(current))),
    )


@dataclass(frozen=True, slots=True)
class Verified:
    snapshot: Snapshot
    fingerprint: Fingerprint


def newest_verified(repo: Repository, component: str) -> Verified | None:
    """The newest snapshot of ``component`` with a verification record, and its fingerprint."""
    by_id = {s.id: s for s in repo.snapshots(component)}
    best: tuple[Snapshot, dict[str, Any]] | None = None
    for v in repo.verifications():
        snap = by_id.get(v.snapshot)
        if snap is None:
            continue
        if best is None or (snap.time, snap.id) >= (best[0].time, best[0].id):
            best = (snap, v.details)
    if best is None:
        return None
    snap, details = best
    files = details.get("files")
    if isinstance(files, dict) and files:
        return Verified(snap, {str(k): str(v) for k, v in files.items()})
    return Verified(snap, snapshot_fingerprint(repo, snap))


@dataclass(frozen=True, slots=True)
class RestoreTest:
    component: str
    snapshot: str
    ok: bool
    duration_s: float
    files: int
    bytes: int
    problems: tuple[str, ...]
    fingerprint: Fingerprint
    #: whether the restored tree equals the live source now (None: not compared)
    same_as_source: bool | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "component": self.component,
            "snapshot": self.snapshot,
            "ok": self.ok,
            "duration_s": self.duration_s,
            "files": self.files,
            "bytes": self.bytes,
            "problems": list(self.problems),
            "same_as_source": self.same_as_source,
        }


def restore_test(
    repo: Repository,
    component: str,
    scratch: Path,
    *,
    source: Path | None = None,
    snapshot: Snapshot | None = None,
    mark: bool = True,
) -> RestoreTest:
    """Restore the newest snapshot of ``component`` into scratch and check it.

    ``ok`` when the restore completed (every blob hash-checked), the file count and bytes
    equal the manifest's. With ``source``, ``same_as_source`` says whether the restored
    tree is bit-exact with the live data now (it may have moved on). A good test is recorded in the
    repository with the fingerprint (``mark``). The scratch copy is always removed.
    """
    snap = snapshot or repo.find_snapshot("latest", component)
    target = scratch / f"restore-test-{component}-{snap.short_id}-{time.monotonic_ns()}"
    started = time.monotonic()
    problems: list[str] = []
    try:
        result = restore(repo, snap, target)
        got = fingerprint(target)
    finally:
        shutil.rmtree(target, ignore_errors=True)
    duration = round(time.monotonic() - started, 3)
    summary = snap.summary
    if "files" in summary and int(summary["files"]) != result.files:
        problems.append(f"restored {result.files} files, the manifest says {summary['files']}")
    if "bytes" in summary and int(summary["bytes"]) != result.bytes:
        problems.append(f"restored {result.bytes} bytes, the manifest says {summary['bytes']}")
    same_as_source: bool | None = None
    if source is not None and source.exists():
        # informational: live data may have moved on since the snapshot
        same_as_source = diff(got, fingerprint(source)).total == 0
    ok = not problems
    if ok and mark:
        repo.mark_verified(
            snap.id,
            {"by": "restore_test", "duration_s": duration, "files": got, "bytes": result.bytes},
        )
    return RestoreTest(
        component,
        snap.id,
        ok,
        duration,
        result.files,
        result.bytes,
        tuple(problems),
        got,
        same_as_source,
    )
