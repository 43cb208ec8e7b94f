"""Lineage composed with the repositories: the rollback-closure check and its plan rules.

``drkit lineage check [--repo R]`` asks one repository whether everything needed to
serve and rebuild each version an alias names — or named within the model's rollback
window — is there and verifies: each training snapshot, artifacts snapshot and the
snapshot holding each eval set its gating runs ran on
(:mod:`drkit.workspace.rollback_closure`) exists, its tree is readable, and every blob
it references decodes to its hash. ``drkit plan
check`` adds two state-fed rules (not in the global registry, like the overdue rules):

- DR310 ``alias-target-unresolved``: every route target naming ``@MODEL:ALIAS`` resolves
  in the registry to a version with an upstream model for the target's provider (the
  gateway refuses to start otherwise);
- DR311 ``rollback-closure-missing``: that closure exists in the primary and in every
  replica (structure only: snapshot and its blobs in the index; ``drkit lineage check``
  also reads the data).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from drkit.connectors.objectstore.registry import open_store
from drkit.errors import CorruptObject, DrkitError, SnapshotNotFound
from drkit.lineage.graph import Need
from drkit.lineage.registry import Registry, parse_alias_target
from drkit.plan.lint import Finding, Rule, Severity, Violation, locate
from drkit.plan.models import Plan
from drkit.repository import Repository
from drkit.repository.maintenance import referenced_blobs
from drkit.state.store import has_state
from drkit.workspace.rollback_closure import aliased_with_needs, rollback_needs

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


def _verify(repo: Repository, need: Need, read_data: bool, unreadable: list[str]) -> str | None:
    """Why ``need`` is not there or does not verify in ``repo`` (None: it does)."""
    if not need.snapshot:  # an eval set no snapshot holds
        where = (
            "no eval_sets component in the plan"
            if not need.component
            else "no snapshot of " + ("any file tree" if need.component == "*" else need.component)
        )
        damaged = f" ({len(unreadable)} eval-set snapshot(s) unreadable)" if unreadable else ""
        return f"{where} holds a file with this content{damaged}"
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
    result = ClosureCheck(name)
    found = rollback_needs(registry, plan, repo, now)
    result.versions = len(found.versions)
    for n in found.versions:
        for need in n.needs:
            problem = _verify(repo, need, read_data, found.unreadable)
            row = {"ref": n.version.ref, "why": n.why, "need": need.to_json(), "problem": problem}
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
    "the training snapshots, artifacts and eval-set snapshots of every version an alias "
    "names, or named within the model's rollback window, are in the primary and every "
    "replica",
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
                wanted = aliased_with_needs(registry, ws.plan)
                if wanted:
                    finding = Finding(
                        path,
                        f"{model.name} does not exist yet: the rollback closure of "
                        f"{wanted} aliased version(s) is not there",
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
        primary = model.name == ws.plan.repositories.primary.name
        for row in check.missing:
            need = row["need"]
            finding = Finding(
                path,
                f"{model.name} lacks {need['kind']} {need['label']} of {row['ref']} "
                f"({'; '.join(row['why'])}): {row['problem']}",
                missing_hint(need, None if primary else model.name),
            )
            out.append(locate(ws.plan, CLOSURE_RULE, finding))
    return out


def missing_hint(need: dict[str, Any], replica: str | None) -> str:
    """What brings a missing need back: a copy to a replica; in the primary, a backup (of
    the eval set's directory, for an eval set no snapshot holds) or a repair."""
    if replica is not None:
        return f"drkit copy --to {replica}"
    if need["kind"] == "eval_set" and not need["snapshot"]:
        if need["component"] in ("", "*"):
            return (
                f"add the directory holding eval set {need['label']} to the plan's eval_sets, "
                "then `drkit backup` it"
            )
        return (
            f"drkit backup {need['component'].split(', ')[0]} (with the file as it was when "
            f"the runs used {need['label']}: restore it from its history if it changed)"
        )
    return f"back up {need['component']} again, or restore it from a replica (`drkit repair`)"
