"""What a scenario needs from drkit's repositories before it can run, and the commands
that provide it (``drkit drill list``).

A scenario's :meth:`~drkit.drills.scenarios.base.Scenario.why_not` judges the plan alone;
this module looks at the repositories: a data-corruption drill restores the newest
*verified* snapshot of each data component, a region-outage drill restores from a
repository outside the lost region. Each missing piece is one line naming the commands.
"""

from __future__ import annotations

from drkit.drills.data import file_components, newest_verified
from drkit.drills.stack import Stack
from drkit.errors import DrkitError, RepositoryNotFound
from drkit.plan.models import Component, Plan
from drkit.plan.models import Repository as RepoModel
from drkit.repository import Repository

#: the scenarios that read snapshots, and so have needs this module checks
DATA_SCENARIOS = ("data-corruption", "region-outage")


def _data_components(plan: Plan) -> list[Component]:
    return [*plan.vector_stores, *file_components(plan)]


def _has_snapshot(repo: Repository, name: str) -> bool:
    return bool(repo.snapshots(name))


def _is_verified(repo: Repository, comp: Component) -> bool:
    if getattr(comp, "path", None):
        return newest_verified(repo, comp.name) is not None
    snaps = {s.id for s in repo.snapshots(comp.name)}
    return any(v.snapshot in snaps for v in repo.verifications())


def _open(stack: Stack, model: RepoModel, needs: list[str], init_hint: str) -> Repository | None:
    try:
        return stack.open(model.name)
    except RepositoryNotFound:
        needs.append(f"repository {model.name!r} does not exist: run {init_hint}")
    except DrkitError as exc:
        hint = f" ({exc.hint})" if exc.hint else ""
        needs.append(f"repository {model.name!r} cannot be opened: {exc}{hint}")
    return None


def missing(stack: Stack) -> dict[str, list[str]]:
    """Per scenario name (of :data:`DATA_SCENARIOS`), what its repositories lack; an
    empty list: nothing is missing."""
    plan = stack.plan
    comps = _data_components(plan)
    out: dict[str, list[str]] = {name: [] for name in DATA_SCENARIOS}
    if not comps:
        return out
    primary = plan.repositories.primary
    needs: list[str] = []
    repo = _open(stack, primary, needs, f"drkit repo init --repo {primary.url}")
    unverified: list[str] = []
    unsnapshotted: list[str] = []
    if repo is not None:
        try:
            for c in comps:
                if not _has_snapshot(repo, c.name):
                    unsnapshotted.append(c.name)
                elif not _is_verified(repo, c):
                    unverified.append(c.name)
        finally:
            repo.close()
    for name in unsnapshotted:
        needs.append(
            f"needs a verified snapshot of {name}: run drkit backup {name} && drkit verify {name}"
        )
    corruption = needs + [
        f"needs a verified snapshot of {name}: run drkit verify {name}" for name in unverified
    ]
    out["data-corruption"] = corruption
    region = list(needs)
    if repo is not None and not unsnapshotted:
        elsewhere = [r for r in plan.repositories.replicas if r.region != primary.region]
        if not elsewhere:
            region.append(
                f"needs a replica outside region {primary.region!r} (repositories.replicas)"
            )
        lacking: list[str] = []
        for replica in elsewhere:
            before = len(lacking)
            rrepo = _open(stack, replica, lacking, f"drkit copy --to {replica.url} --init")
            if rrepo is not None:
                try:
                    gone = [c.name for c in comps if not _has_snapshot(rrepo, c.name)]
                finally:
                    rrepo.close()
                if gone:
                    lacking.append(
                        f"replica {replica.name!r} holds no snapshot of {', '.join(gone)}: "
                        f"run drkit copy --to {replica.url}"
                    )
            if len(lacking) == before:  # one replica elsewhere that holds everything will do
                lacking = []
                break
        region += lacking
    out["region-outage"] = region
    return out
