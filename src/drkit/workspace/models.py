"""The model registry composed with the repository, the plan and the eval gate.

:mod:`drkit.lineage` keeps the registry as events; this module adds what needs other
layers: checking ``--trained-on DATASET@SNAPSHOT`` against the repository, snapshotting a
version's artifacts directory (what retention must keep for a rollback is
:mod:`drkit.workspace.rollback_closure`); the gate of ``promote`` and
``rollback`` is :mod:`drkit.drills.model_gate` (re-exported here).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from drkit.drills.model_gate import (
    EVAL_RUN,
    Gate,
    GateRefused,
    GateResult,
    eval_gate,
    eval_runs_of,
    promote,
    recorded_eval_gate,
    rollback,
)
from drkit.errors import SnapshotNotFound, UsageError
from drkit.lineage.registry import (
    DatasetRef,
    ModelVersion,
    Registry,
    check_name,
    check_version,
)
from drkit.plan.models import Plan
from drkit.repository import Repository, Snapshot
from drkit.repository.retention import named_version
from drkit.state.store import (
    StateStore,
    state_location,
)
from drkit.workspace.access import load_plan_if_any
from drkit.workspace.openlineage_out import openlineage_out

#: the gate, re-exported (defined once, in drkit.drills.model_gate)
__all__ = [
    "EVAL_RUN",
    "Gate",
    "GateRefused",
    "GateResult",
    "eval_gate",
    "eval_runs_of",
    "promote",
    "recorded_eval_gate",
    "rollback",
]


def state_for(plan_path: Path, plan: Plan | None) -> StateStore:
    """drkit's state for this plan (``$DRKIT_STATE``, else beside the plan)."""
    return StateStore(state_location(plan, plan_path))


@contextlib.contextmanager
def open_registry(plan_path: Path) -> Iterator[tuple[Registry, Plan | None]]:
    """The registry in this plan's state, and the plan (None without a plan file)."""
    plan = load_plan_if_any(plan_path)
    state = state_for(plan_path, plan)
    try:
        yield Registry(state), plan
    finally:
        state.close()


# --- registration ----------------------------------------------------------------------


def parse_pairs(option: str, items: Sequence[str]) -> dict[str, str]:
    """``KEY=VALUE`` options (``--upstream openai=gpt-4.1``, ``--tag stage=prod``)."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise UsageError(f"{option} {item!r}: expected KEY=VALUE", hint=f"e.g. {option} a=b")
        if key in out:
            raise UsageError(f"{option} {key!r} is given twice")
        out[key.strip()] = value.strip()
    return out


def dataset_snapshot(repo: Repository, plan: Plan | None, ref: str) -> DatasetRef:
    """``DATASET@VERSION`` (a named version) or ``DATASET@SNAPSHOT`` (an id or unique
    prefix) in ``repo``; exit 2 when it does not exist or is not a dataset's snapshot."""
    dataset, sep, which = ref.partition("@")
    if not sep or not dataset or not which:
        raise UsageError(
            f"--trained-on {ref!r}: expected DATASET@SNAPSHOT",
            hint="e.g. --trained-on train@v2 or --trained-on train@1f3a9c0e",
        )
    if plan is not None and not any(d.name == dataset for d in plan.datasets):
        try:
            other = plan.component(dataset).kind
        except KeyError:
            other = None
        what = f"a {other}, not a dataset" if other else "not a dataset of the plan"
        raise UsageError(
            f"--trained-on {ref!r}: {dataset!r} is {what}",
            hint="datasets: " + (", ".join(d.name for d in plan.datasets) or "none"),
        )
    snaps = repo.snapshots(dataset)
    by_label = {label: s for s in snaps if (label := named_version(s)) is not None}
    snap: Snapshot | None = by_label.get(which)
    if snap is None:
        matches = [s for s in snaps if s.id.startswith(which)]
        if len(matches) == 1:
            snap = matches[0]
    if snap is None:
        other = _other_component(repo, which)
        if other is not None:
            raise UsageError(
                f"--trained-on {ref!r}: snapshot {which} is of {other!r}, not of dataset "
                f"{dataset!r}",
                hint=f"`drkit snapshots -c {dataset}` lists the dataset's snapshots",
            )
        raise SnapshotNotFound(
            f"--trained-on {ref!r}: {dataset} has no version or snapshot {which!r}",
            hint="versions: "
            + (", ".join(by_label) or "none")
            + f"; snapshots: `drkit snapshots -c {dataset}`",
        )
    if snap.kind == "vectors":
        raise UsageError(
            f"--trained-on {ref!r}: {snap.short_id} is a vector-store snapshot, not a dataset's",
            hint="name a dataset snapshot (`drkit backup DATASET`)",
        )
    return DatasetRef(dataset, snap.id, named_version(snap))


def _other_component(repo: Repository, prefix: str) -> str | None:
    try:
        return repo.find_snapshot(prefix).component
    except SnapshotNotFound:
        return None


@dataclass(frozen=True, slots=True)
class Registration:
    version: ModelVersion
    new_model: bool


def register(
    registry: Registry,
    plan: Plan | None,
    model: str,
    version: str,
    *,
    repo: Callable[[], contextlib.AbstractContextManager[Repository]] | None = None,
    upstream: Mapping[str, str] | None = None,
    trained_on: Sequence[str] = (),
    artifacts: Path | None = None,
    tags: Mapping[str, str] | None = None,
    description: str = "",
) -> Registration:
    """Register ``MODEL VERSION``: every check first (names, immutability, the training
    snapshots exist in the repository), then the artifacts snapshot, then the event."""
    check_name("model", model)
    check_version(version)
    if registry.has_version(model, version):
        registry.register(model, version)  # raises the "immutable" error
    if artifacts is not None and (not artifacts.exists() or not any(artifacts.iterdir())):
        raise UsageError(
            f"--artifacts {artifacts}: "
            + ("no such directory" if not artifacts.exists() else "the directory is empty"),
            hint="point it at the directory holding the version's weights/config",
        )
    new_model = model not in registry.models()
    refs: list[DatasetRef] = []
    snapshot_id: str | None = None
    if trained_on or artifacts is not None:
        if repo is None:
            raise UsageError("--trained-on and --artifacts need a repository", hint="--repo URL")
        with repo() as r:
            refs = [dataset_snapshot(r, plan, ref) for ref in trained_on]
            if artifacts is not None:
                from drkit.repository import backup_path

                snap = backup_path(
                    r,
                    artifacts,
                    component=model,
                    tags=("model-artifacts",),
                    meta={"model": model, "model_version": version},
                )
                snapshot_id = snap.id
    registered = registry.register(
        model,
        version,
        upstream=upstream,
        trained_on=refs,
        artifacts=snapshot_id,
        artifacts_component=model if snapshot_id else None,
        tags=tags,
        description=description,
    )
    openlineage_out(plan, registry.state).model_registered(registered)
    return Registration(registered, new_model)
