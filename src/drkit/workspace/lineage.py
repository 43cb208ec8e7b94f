"""Lineage composed with the repositories: the rollback-closure check and its plan rules.

``drkit lineage check [--repo R]`` asks one repository whether everything needed to
serve and rebuild each version an alias names — or named within the model's rollback
window — is there and verifies: each training snapshot and artifacts snapshot exists,
its tree is readable, and every blob it references decodes to its hash. ``drkit plan
check`` adds two state-fed rules (not in the global registry, like the overdue rules):

- DR310 ``alias-target-unresolved``: every route target naming ``@MODEL:ALIAS`` resolves
  in the registry to a version with an upstream model for the target's provider (the
  gateway refuses to start otherwise);
- DR311 ``rollback-closure-missing``: that closure exists in the primary and in every
  replica (structure only: snapshot and its blobs in the index; ``drkit lineage check``
  also reads the data).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from drkit.connectors.objectstore.registry import open_store
from drkit.errors import CorruptObject, DrkitError, SnapshotNotFound
from drkit.lineage.graph import Need, closure, needed
from drkit.lineage.registry import Registry, parse_alias_target
from drkit.plan.lint import Finding, Rule, Severity, Violation, locate
from drkit.plan.models import Plan
from drkit.repository import Repository
from drkit.repository.maintenance import referenced_blobs
from drkit.state.store import has_state
from drkit.workspace.models import rollback_window

if TYPE_CHECKING:
    from drkit.workspace.workspace import Workspace


@dataclass
class ClosureCheck:
    """What one repository holds of the aliased versions' closures."""

    repository: str
    #: one row per (version, need): ``ref``, ``why``, ``need`` (Need.to_json), ``problem``
    ok: list[dict[str, Any]] = field(default_factory=list)
    missing: list[dict[str, Any]] = field(default_factory=list)
    versions: int = 0

    @property
    def passed(self) -> bool:
        return not self.missing

    def to_json(self) -> dict[str, Any]:
        return {
            "repository": self.repository,
            "passed": self.passed,
            "versions": self.versions,
            "checked": len(self.ok) + len(self.missing),
            "ok": self.ok,
            "missing": self.missing,
        }


def _verify(repo: Repository, need: Need, read_data: bool) -> str | None:
    """Why ``need`` is not there or does not verify in ``repo`` (None: it does)."""
    try:
        snap = repo.find_snapshot(need.snapshot)
    except SnapshotNotFound:
        return "no such snapshot"
    if snap.id != need.snapshot:
        return "no such snapshot"
    if snap.component != need.component:
        return f"the snapshot is of {snap.component!r}, not {need.component!r}"
    from drkit.repository.integrity import CheckReport

    report = CheckReport()
    blobs = referenced_blobs(repo, [snap], report)
    if report.errors:
        return report.errors[0]
    if read_data:
        for bid in sorted(blobs):
            try:
                repo.read_blob(bid)
            except (CorruptObject, DrkitError, KeyError) as exc:
                return f"blob {bid.hex()[:16]}: {exc}"
    return None


def closure_check(
    registry: Registry,
    plan: Plan | None,
    repo: Repository,
    name: str,
    *,
    read_data: bool = True,
    now: float | None = None,
) -> ClosureCheck:
    """Check every aliased version's closure in ``repo`` (named ``name`` in the report)."""
    moment = now if now is not None else datetime.now(UTC).timestamp()
    result = ClosureCheck(name)
    wanted = needed(registry, lambda m: rollback_window(plan, m), moment)
    result.versions = len(wanted)
    for (model, label), whys in sorted(wanted.items()):
        v = registry.version(model, label)
        for need in closure(v):
            problem = _verify(repo, need, read_data)
            row = {"ref": v.ref, "why": whys, "need": need.to_json(), "problem": problem}
            (result.ok if problem is None else result.missing).append(row)
    return result


# --- plan check --------------------------------------------------------------------------


def _unresolved(plan: Plan, registry: Registry) -> list[Finding]:
    out = []
    for i, route in enumerate(plan.serving.routes):
        for j, t in enumerate(route.targets):
            try:
                ref = parse_alias_target(t.model)
                if ref is None:
                    continue
                registry.serving(ref[0], ref[1], t.provider)
            except DrkitError as exc:
                out.append(
                    Finding(
                        ("serving", "routes", i, "targets", j, "model"),
                        f"route {route.name!r} target {t.name!r}: {t.model} does not resolve: "
                        f"{exc}",
                        exc.hint or "drkit model alias set MODEL ALIAS VERSION --reason ...",
                    )
                )
    return out


def _no_check(plan: Plan, ctx: Any) -> list[Finding]:
    return []


ALIAS_RULE = Rule(
    "DR310",
    "alias-target-unresolved",
    Severity.ERROR,
    "every route target naming @MODEL:ALIAS resolves in the registry to a version with an "
    "upstream model for its provider",
    "Which model version serves is tracked; a rollback needs a version to roll back to.",
    _no_check,
)
CLOSURE_RULE = Rule(
    "DR311",
    "rollback-closure-missing",
    Severity.ERROR,
    "the training snapshots and artifacts of every version an alias names, or named within "
    "the model's rollback window, are in the primary and every replica",
    "Catastrophic model quality regression: roll back to previous model version.",
    _no_check,
)


def lineage_violations(ws: Workspace) -> list[Violation]:
    """DR310 and DR311 for ``drkit plan check`` (none without a state or a registry)."""
    if not has_state(ws.state_location):
        return []
    registry = Registry(ws.state())
    out = [locate(ws.plan, ALIAS_RULE, f) for f in _unresolved(ws.plan, registry)]
    if not registry.models():
        return out
    stack = ws.stack()
    for i, model in enumerate(stack.repositories()):
        path: tuple[str | int, ...] = ("repositories", "primary")
        if i > 0:  # the primary first, then the replicas in plan order
            path = ("repositories", "replicas", i - 1)
        try:
            if not open_store(model.url).exists("config"):
                wanted = needed(registry, lambda m: rollback_window(ws.plan, m), time.time())
                if any(closure(registry.version(m, v)) for m, v in wanted):
                    finding = Finding(
                        path,
                        f"{model.name} does not exist yet: the rollback closure of "
                        f"{len(wanted)} aliased version(s) is not there",
                        f"drkit copy --to {model.name} --init",
                    )
                    out.append(locate(ws.plan, CLOSURE_RULE, finding))
                continue
            with stack.open_repository(model.name) as repo:
                check = closure_check(registry, ws.plan, repo, model.name, read_data=False)
        except DrkitError as exc:
            finding = Finding(
                path,
                f"{model.name}: the rollback closure could not be checked ({exc})",
                "create or open the repository, then run `drkit lineage check` again",
                Severity.WARNING,
            )
            out.append(locate(ws.plan, CLOSURE_RULE, finding))
            continue
        for row in check.missing:
            need = row["need"]
            finding = Finding(
                path,
                f"{model.name} lacks {need['kind']} {need['label']} of {row['ref']} "
                f"({'; '.join(row['why'])}): {row['problem']}",
                f"drkit copy --to {model.name}"
                if model.name != ws.plan.repositories.primary.name
                else f"back up {need['component']} again, or restore it from a replica "
                "(`drkit repair`)",
            )
            out.append(locate(ws.plan, CLOSURE_RULE, finding))
    return out
