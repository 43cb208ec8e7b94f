"""Named versions of versioned datasets: every snapshot of one is a version models name.

A snapshot of a dataset with ``versioned: true`` carries its label in ``meta.version``
(``v1``, ``v2``... one more than the highest ``vN`` so far, or the label given with
``drkit backup --version``); the label is in the repository, so the repository alone
says which versions exist. ``forget`` keeps every named version whatever the policy
(:func:`drkit.repository.maintenance.forget`), unless told by name
(``drkit forget --component train --version v1``); DR304 checks that the versions models
were trained on are among them.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Sequence

from drkit.errors import SnapshotNotFound, UsageError
from drkit.plan.models import Plan
from drkit.repository import Repository, Snapshot
from drkit.repository.retention import named_version

_NUMBERED = re.compile(r"^v(\d+)$")


def is_versioned(plan: Plan | None, component: str) -> bool:
    """Whether the plan declares ``component`` a dataset with ``versioned: true``."""
    if plan is None:
        return False
    return any(d.name == component and d.versioned for d in plan.datasets)


def versions(snapshots: Iterable[Snapshot], component: str) -> dict[str, Snapshot]:
    """The named versions of ``component`` (label -> snapshot), oldest first."""
    return {
        label: s
        for s in snapshots
        if s.component == component and (label := named_version(s)) is not None
    }


def next_version(labels: Collection[str]) -> str:
    """``v<N+1>`` after the highest ``vN`` among ``labels`` (``v1`` for the first)."""
    numbers = [int(m.group(1)) for m in map(_NUMBERED.match, labels) if m]
    return f"v{max(numbers, default=0) + 1}"


def version_label(repo: Repository, component: str, wanted: str | None) -> str:
    """The label of the next snapshot of a versioned ``component``: ``wanted`` (refused
    when it exists already) or the next ``vN``."""
    existing = versions(repo.snapshots(component), component)
    if wanted is None:
        return next_version(existing)
    if not wanted.strip():
        raise UsageError("--version: empty version label", hint="e.g. --version v3")
    if wanted in existing:
        raise UsageError(
            f"{component}@{wanted} exists already (snapshot {existing[wanted].short_id})",
            hint="a version is immutable: choose another label, or leave --version out "
            f"for the next one ({next_version(existing)})",
        )
    return wanted


def find_version(repo: Repository, ref: str) -> Snapshot:
    """The snapshot of ``DATASET@VERSION`` (exit 2 naming the versions when there is none)."""
    component, _, label = ref.partition("@")
    found = versions(repo.snapshots(component), component)
    if label not in found:
        raise SnapshotNotFound(
            f"{component} has no version {label!r}",
            hint="versions: "
            + (", ".join(found) or "none")
            + f" (`drkit snapshots -c {component}`)",
        )
    return found[label]


def trained_versions(plan: Plan | None, component: str) -> dict[str, list[str]]:
    """Which models of the plan name each version of dataset ``component``."""
    out: dict[str, list[str]] = {}
    for model in plan.models if plan is not None else ():
        for used in model.trained_on:
            if used.dataset == component:
                out.setdefault(used.version, []).append(model.name)
    return out


def release(
    repo: Repository, plan: Plan | None, components: Sequence[str] | None, labels: Sequence[str]
) -> list[str]:
    """The snapshot ids of the named versions ``labels`` of the one dataset ``components``
    names, for ``forget --version``: each must exist, and no model of the plan may name it
    as its training data (lineage would break)."""
    if not labels:
        return []
    if not components or len(components) != 1:
        raise UsageError(
            "--version needs exactly one --component (the dataset whose versions to forget)",
            hint="e.g. drkit forget --component train --version v1",
        )
    [component] = components
    found = versions(repo.snapshots(component), component)
    used = trained_versions(plan, component)
    ids = []
    for label in labels:
        if label not in found:
            raise UsageError(
                f"{component} has no version {label!r}",
                hint="versions: " + (", ".join(found) or "none"),
            )
        if label in used:
            raise UsageError(
                f"{component}@{label} trained model(s) {', '.join(used[label])}: "
                "forgetting it would break their lineage",
                hint="retire those models (or fix models[].trained_on) first",
            )
        ids.append(found[label].id)
    return ids


def dataset_versions(repo: Repository, plan: Plan) -> dict[str, set[str]]:
    """The named versions in ``repo`` of every dataset of the plan (for DR304)."""
    snaps = repo.snapshots()
    return {d.name: set(versions(snaps, d.name)) for d in plan.datasets}
