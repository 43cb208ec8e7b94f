"""The *measured* RPO: per component and region, how old the newest snapshot is.

For each component with a tier, in the primary repository and in every replica it is
copied to (its ``replicate_to``): the age of the newest snapshot present there, and of
the newest *verified* one (a restore test marked it in the repository), against the
tier's ``rpo`` target; beside it the RPO the plan's schedule allows
(:func:`drkit.plan.analysis.achievable_rpo`, what ``plan check`` computes). A vector
store counts its worst collection (the one whose newest snapshot is oldest). No
snapshot, or a repository that cannot be read, exceeds the target: never a silent pass.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import Any

from drkit.errors import DrkitError, RepositoryNotFound
from drkit.plan.analysis import achievable_rpo, replicas_of
from drkit.plan.lint import Finding, Rule, Severity, Violation, locate
from drkit.plan.models import Component, Plan
from drkit.repository import Repository, Snapshot
from drkit.workspace.access import credentials, repository_at, repository_credentials
from drkit.workspace.workspace import Workspace


@dataclass(frozen=True, slots=True)
class MeasuredRpo:
    """One component in one region's repository."""

    component: str
    repository: str
    region: str
    target_s: float
    #: what the plan's schedule and copy interval allow (None: no schedule)
    computed_s: float | None
    #: age of the newest snapshot there (None: none)
    newest_s: float | None
    #: age of the newest verified snapshot there (None: none)
    verified_s: float | None
    #: why the repository could not be read
    error: str | None = None

    @property
    def exceeded(self) -> bool:
        return self.newest_s is None or self.newest_s > self.target_s

    def to_json(self) -> dict[str, Any]:
        return {
            "component": self.component,
            "repository": self.repository,
            "region": self.region,
            "target_s": self.target_s,
            "computed_s": self.computed_s,
            "measured_s": None if self.newest_s is None else round(self.newest_s, 3),
            "verified_s": None if self.verified_s is None else round(self.verified_s, 3),
            "exceeded": self.exceeded,
            "error": self.error,
        }


def _newest(snaps: list[Snapshot]) -> float | None:
    """The time of the newest snapshot, per collection the worst (oldest) of the newest."""
    by_group: dict[object, float] = {}
    for s in snaps:
        key = s.meta.get("collection")
        t = s.datetime.timestamp()
        by_group[key] = max(by_group.get(key, t), t)
    return min(by_group.values()) if by_group else None


def _tracked(ws: Workspace) -> list[Component]:
    from drkit.workspace.protect import _backupable

    return [c for _, c in ws.plan.components() if c.tier in ws.plan.tiers and _backupable(c)]


def measure_rpo(ws: Workspace, now: float | None = None) -> list[MeasuredRpo]:
    """The measured RPO of every tracked component in every repository that should hold it."""
    moment = time.time() if now is None else now
    comps = _tracked(ws)
    wanted: dict[str, list[Component]] = {}
    for comp in comps:
        wanted.setdefault(ws.plan.repositories.primary.name, []).append(comp)
        for rep in replicas_of(ws.plan, comp):
            wanted.setdefault(rep.name, []).append(comp)
    out: list[MeasuredRpo] = []
    for repo_name, members in wanted.items():
        model = ws.plan.repository(repo_name)
        snaps: list[Snapshot] = []
        verified: set[str] = set()
        error = None
        try:
            # the credentials the agent's copy used (a replica without its own password
            # source: DRKIT_TO_PASSWORD, else DRKIT_PASSWORD), so rpo reads what copy wrote
            if repo_name == ws.plan.repositories.primary.name:
                url, password = credentials(None, ws.plan_path)
            else:
                url, password = repository_credentials(repo_name, ws.plan_path, "TO")
            with contextlib.ExitStack() as stack:
                repo: Repository = stack.enter_context(repository_at(url, password))
                snaps = repo.snapshots()
                verified = {v.snapshot for v in repo.verifications()}
        except RepositoryNotFound:
            error = f"no repository at {model.url}"
        except DrkitError as exc:
            error = str(exc)
        for comp in members:
            mine = [s for s in snaps if s.component == comp.name]
            newest = _newest(mine)
            good = _newest([s for s in mine if s.id in verified])
            est = achievable_rpo(ws.plan, comp)
            out.append(
                MeasuredRpo(
                    comp.name,
                    repo_name,
                    model.region,
                    ws.plan.tiers[str(comp.tier)].rpo,
                    None if est is None else est.total,
                    None if newest is None else moment - newest,
                    None if good is None else moment - good,
                    error,
                )
            )
    from drkit.agent.standby import standby_rows  # warm standbys: their lag is an RPO too

    return out + standby_rows(ws, moment)


def _no_check(plan: Plan, ctx: object) -> Any:
    return iter(())


#: ``plan check`` beside a state: the measured RPO against the target (not in the global
#: lint registry: it reads the repositories, like DR593)
MEASURED_RULE = Rule(
    "DR594",
    "measured-rpo-exceeded",
    Severity.ERROR,
    "the newest snapshot of every component, in every repository that should hold it, is "
    "younger than its tier's rpo",
    "Measure RTO/RPO against targets.",
    _no_check,  # evaluated by measured_findings with what the repositories hold
)


def measured_findings(plan: Plan, rows: list[MeasuredRpo]) -> list[Violation]:
    """DR594 for every row whose measured RPO exceeds its target: an error when a snapshot
    is older than the target, a warning when there is none yet or it could not be read."""
    from drkit.types import format_duration

    paths = {comp.name: path for path, comp in plan.components()}
    out = []
    for m in rows:
        if not m.exceeded:
            continue
        where = (*paths.get(m.component, ()), "tier") if m.component in paths else ("tiers",)
        if m.newest_s is None:
            why = m.error or "no snapshot there yet"
            finding = Finding(
                where,
                f"{m.component} in {m.repository} ({m.region}): no measured RPO ({why})",
                f"`drkit backup {m.component}` and `drkit copy`, or keep `drkit agent run` going",
                Severity.WARNING,
            )
        else:
            finding = Finding(
                where,
                f"{m.component} in {m.repository} ({m.region}): measured RPO "
                f"{format_duration(round(m.newest_s))} exceeds the target "
                f"{format_duration(m.target_s)}",
                "`drkit agent run` keeps the cadence; `drkit rpo` shows every region",
            )
        out.append(locate(plan, MEASURED_RULE, finding))
    return out
