"""The restore test of a component that restores into a scratch place (a harness cloned,
an MLflow registry rebuilt in a scratch SQLite store): restore the newest snapshot there,
time it, always remove the place, mark a good snapshot verified."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drkit.errors import DrkitError
from drkit.repository import Repository, Snapshot

#: restores ``snapshot`` into the scratch path (which it creates) and returns what it
#: saw (``details``) and what is wrong with it (``problems``); raises DrkitError when the
#: restore fails outright
Restore = Callable[[Snapshot, Path], tuple[dict[str, Any], list[str]]]


@dataclass(frozen=True, slots=True)
class ScratchCheck:
    component: str
    snapshot: str
    ok: bool
    duration_s: float
    summary: str
    problems: tuple[str, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)


def scratch_restore_test(
    repo: Repository,
    component: str,
    scratch: Path,
    kind: str,
    restore: Restore,
    describe: Callable[[dict[str, Any]], str],
    *,
    mark: bool = True,
) -> ScratchCheck:
    """Restore the newest snapshot of ``component`` into a new place under ``scratch``
    with ``restore``; ``describe`` turns its details into the one-line summary."""
    snap = repo.find_snapshot("latest", component)
    scratch.mkdir(parents=True, exist_ok=True)
    where = scratch / f"restore-test-{component}-{snap.short_id}-{time.monotonic_ns()}"
    started = time.monotonic()
    problems: list[str] = []
    details: dict[str, Any] = {"kind": kind}
    try:
        seen, wrong = restore(snap, where)
        details |= seen
        problems += wrong
    except DrkitError as exc:
        problems.append(str(exc))
    finally:
        shutil.rmtree(where, ignore_errors=True)
    duration = round(time.monotonic() - started, 3)
    ok = not problems
    if ok and mark:
        repo.mark_verified(snap.id, {"by": "restore_test", "duration_s": duration, **details})
    summary = describe(details) if len(details) > 1 else "not restored"
    return ScratchCheck(component, snap.id, ok, duration, summary, tuple(problems), details)
