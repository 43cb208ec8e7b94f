"""What ``drkit plan check`` asks the repositories of the plan.

DR304: the dataset versions models were trained on exist as named versions (the primary
is asked, else the first replica that opens). DR593: each replica holds every primary
snapshot older than its ``copy_every``. What cannot be checked is reported, never passed
in silence: advice while no repository exists yet (day one), a warning when one exists but
does not open (wrong password, unreachable).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from drkit.connectors.objectstore.registry import open_store
from drkit.errors import DrkitError, RepositoryNotFound
from drkit.plan.lint import Finding, LintContext, Severity, Violation, lint, locate, rules
from drkit.repository import Repository
from drkit.workspace.overdue import ReplicaGap, replica_findings
from drkit.workspace.versions import dataset_versions

if TYPE_CHECKING:
    from drkit.workspace.workspace import Workspace


def repository_checks(ws: Workspace, now: datetime | None = None) -> list[Violation]:
    """What ``plan check`` asks the repositories: DR304 (the dataset versions models
    were trained on exist as named versions; the primary, else the first replica that
    opens) and DR593 (each replica holds every snapshot older than its copy_every).
    What cannot be checked says so (never a silent pass): advice while no repository
    exists yet, else a warning."""
    moment = (now or datetime.now(UTC)).timestamp()
    lineage = any(m.trained_on for m in ws.plan.models)
    problems: list[str] = []
    day_one = True  # every repository simply does not exist yet
    out: list[Violation] = []
    checked = False
    for model in ws.stack().repositories():
        try:
            if not open_store(model.url).exists("config"):
                raise RepositoryNotFound(f"no repository at {model.url}")
            with ws.stack().open_repository(model.name) as repo:
                known = dataset_versions(repo, ws.plan)
                if model.name == ws.plan.repositories.primary.name:
                    out += replica_findings(ws.plan, _replica_gaps(ws, repo, moment))
        except DrkitError as exc:
            problems.append(f"{model.name}: {exc}")
            day_one = day_one and isinstance(exc, RepositoryNotFound)
            continue
        if lineage:
            out += lint(ws.plan, LintContext(dataset_versions=known.get), only=("DR304",))
        checked = True
        break
    users = [i for i, m in enumerate(ws.plan.models) if m.trained_on]
    if not checked and users:
        [rule] = [r for r in rules() if r.id == "DR304"]
        finding = Finding(
            ("models", users[0], "trained_on"),
            "the dataset versions models were trained on could not be checked: no "
            "repository could be opened (" + "; ".join(problems) + ")",
            "create the repository (`drkit repo init`) and back the datasets up, or set "
            "its password, then run `drkit plan check` again",
            # no repository yet is day one (advice); one that exists but does not open
            # (wrong password, unreachable) is a warning
            Severity.INFO if day_one else Severity.WARNING,
        )
        out.append(locate(ws.plan, rule, finding))
    return out


def _replica_gaps(ws: Workspace, primary: Repository, now: float) -> dict[str, ReplicaGap]:
    """Per replica: the primary's snapshots older than its copy_every that it lacks
    (components that name it in ``replicate_to``), or why that could not be checked."""
    comps = {c.name: c for _, c in ws.plan.components()}
    snaps = primary.snapshots()
    gaps: dict[str, ReplicaGap] = {}
    for rep in ws.plan.repositories.replicas:
        due = [
            (s, now - s.datetime.timestamp())
            for s in snaps
            if s.component in comps
            and rep.name in comps[s.component].replicate_to
            and now - s.datetime.timestamp() > rep.copy_every
        ]
        if not due:
            continue
        try:
            if not open_store(rep.url).exists("config"):
                have: set[str] = set()  # never copied to: everything due is missing
            else:
                with ws.stack().open_repository(rep.name) as replica:
                    have = set(replica.snapshot_ids())
        except DrkitError as exc:
            gaps[rep.name] = str(exc)
            continue
        gaps[rep.name] = [(s.component, age) for s, age in due if s.id not in have]
    return gaps
