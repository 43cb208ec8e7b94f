"""The rollback closure in one repository: what each aliased version needs, found there.

A version an alias names now, or named within its model's rollback window
(:func:`drkit.lineage.graph.needed`), needs its training snapshots and its artifacts
snapshot (:func:`drkit.lineage.graph.closure`, ids the registry records) and the eval
sets its gating runs ran on (:func:`drkit.lineage.graph.eval_set_versions`: a name and
a content digest, no snapshot id). This module finds, per digest, the newest snapshot of
the plan's ``eval_sets`` components whose tree holds a file with that content, and gives
retention (:func:`protected_snapshots`) and ``drkit lineage check``
(:mod:`drkit.workspace.lineage`) the same list of needs.

It is cheap: an eval run records the BLAKE3 of the eval set file's bytes
(:mod:`drkit.evals.evalset`) and the repository names every chunk by the BLAKE3 of its
plaintext, so a file stored as one chunk — an eval set is small — has the digest as its
only content id: reading the eval-set snapshots' trees is enough. A file of several
chunks is read and hashed only when its name's stem is the eval set's name. Without a
plan, every file-tree snapshot is searched.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import blake3

from drkit.errors import DrkitError
from drkit.lineage.graph import EvalSetVersion, Need, closure, eval_set_versions, needed
from drkit.lineage.registry import ModelVersion, Registry
from drkit.plan.models import EvalSet, Plan
from drkit.repository import Repository, Snapshot
from drkit.repository.trees import load_tree, node_text, read_entry
from drkit.state.store import StateStore, has_state, state_location
from drkit.workspace.access import load_plan_if_any

#: how far back an alias's versions stay restorable when the plan does not say
DEFAULT_ROLLBACK_WINDOW = 30 * 86400.0


def rollback_window(plan: Plan | None, model: str) -> float:
    for m in plan.models if plan is not None else ():
        if m.name == model and m.rollback_window is not None:
            return float(m.rollback_window)
    return DEFAULT_ROLLBACK_WINDOW


@dataclass(frozen=True, slots=True)
class Needs:
    """One aliased version, why it must stay restorable, and what that takes."""

    version: ModelVersion
    why: list[str]
    needs: list[Need]


class _Finder:
    """Which snapshots hold a file with a given content digest (trees read once each)."""

    def __init__(self, repo: Repository, names: set[str]) -> None:
        self.repo = repo
        self.names = names  # eval-set names: the stems of files worth hashing
        self.trees: dict[str, frozenset[str]] = {}

    def _file_digest(self, node: dict[str, object], name: str) -> str | None:
        content = node.get("content")
        if not isinstance(content, list):
            return None
        if len(content) == 1:  # one chunk: its id is the BLAKE3 of the file's bytes
            entry = content[0]
            return entry if isinstance(entry, str) else str(entry["id"])
        if not content or Path(name).stem not in self.names:
            return None
        h = blake3.blake3()
        for entry in content:
            h.update(read_entry(self.repo, entry))
        return h.hexdigest()

    def digests(self, tree: str) -> frozenset[str]:
        """The content digests of the files under ``tree`` (raises when it is unreadable)."""
        got = self.trees.get(tree)
        if got is not None:
            return got
        out: set[str] = set()
        for node in load_tree(self.repo, tree):
            if node.get("type") == "dir":
                out |= self.digests(str(node["subtree"]))
            elif node.get("type") == "file":
                digest = self._file_digest(node, node_text(node, "name"))
                if digest is not None:
                    out.add(digest)
        self.trees[tree] = frozenset(out)
        return self.trees[tree]


def eval_set_components(plan: Plan | None) -> list[str] | None:
    """The components eval sets are looked for in (None: every file-tree snapshot)."""
    if plan is None:
        return None
    return [c.name for _, c in plan.components() if isinstance(c, EvalSet)]


def find_eval_sets(
    repo: Repository, plan: Plan | None, wanted: Iterable[EvalSetVersion]
) -> tuple[dict[str, Snapshot], list[str]]:
    """Digest -> the newest snapshot of the eval-set components holding a file with that
    content (digests no snapshot holds are absent), and the snapshots that could not be
    read. Stops reading once every digest is found."""
    wanted = list(wanted)
    left = {w.digest for w in wanted}
    found: dict[str, Snapshot] = {}
    unreadable: list[str] = []
    if not left:
        return found, unreadable
    components = eval_set_components(plan)
    snaps = [
        s
        for s in repo.snapshots()
        if (s.component in components if components is not None else s.kind == "files")
    ]
    finder = _Finder(repo, {w.name for w in wanted})
    for snap in reversed(snaps):  # newest first
        try:
            held = finder.digests(snap.tree) & left
        except (DrkitError, KeyError, ValueError):
            unreadable.append(snap.id)
            continue
        for digest in held:
            found[digest] = snap
        left -= held
        if not left:
            break
    return found, unreadable


@dataclass(frozen=True, slots=True)
class Closure:
    """The aliased versions' needs in one repository."""

    versions: list[Needs]
    #: eval-set snapshots whose trees could not be read (one may have held a missing set)
    unreadable: list[str]


def rollback_needs(
    registry: Registry, plan: Plan | None, repo: Repository, now: float | None = None
) -> Closure:
    """Every aliased version with its needs in ``repo``: training and artifacts snapshots,
    and per eval-set version the snapshot holding it (``snapshot`` "" when none does)."""
    moment = now if now is not None else datetime.now(UTC).timestamp()
    wanted = needed(registry, lambda m: rollback_window(plan, m), moment)
    evals = eval_set_versions(registry, set(wanted))
    holders, unreadable = find_eval_sets(repo, plan, [e for es in evals.values() for e in es])
    where = eval_set_components(plan)
    looked = ", ".join(where) if where is not None else "*"
    out = []
    for (model, label), why in sorted(wanted.items()):
        v = registry.version(model, label)
        needs = closure(v)
        for es in evals.get((model, label), []):
            snap = holders.get(es.digest)
            if snap is not None:
                needs.append(Need("eval_set", snap.component, snap.id, es.label, es.digest))
            else:
                needs.append(Need("eval_set", looked, "", es.label, es.digest))
        out.append(Needs(v, why, needs))
    return Closure(out, unreadable)


def aliased_with_needs(registry: Registry, plan: Plan | None) -> int:
    """How many aliased versions need anything from a repository (none read)."""
    wanted = needed(registry, lambda m: rollback_window(plan, m), datetime.now(UTC).timestamp())
    evals = eval_set_versions(registry, set(wanted))
    return sum(1 for m, v in wanted if closure(registry.version(m, v)) or evals.get((m, v)))


def protected_snapshots(
    registry: Registry, plan: Plan | None, repo: Repository, now: float | None = None
) -> dict[str, str]:
    """Snapshot id -> why it is kept: the training data, artifacts and eval sets of every
    version an alias names now or named within the model's rollback window."""
    reasons: dict[str, list[str]] = {}
    for n in rollback_needs(registry, plan, repo, now).versions:
        alias = n.why[0].split(" ", 1)[0]
        for need in n.needs:
            if not need.snapshot:
                continue
            what = f": eval set {need.label}" if need.kind == "eval_set" else ""
            why = f"lineage {n.version.ref} ({alias}){what}"
            if why not in reasons.setdefault(need.snapshot, []):
                reasons[need.snapshot].append(why)
    return {snap: "; ".join(whys) for snap, whys in reasons.items()}


def lineage_protected(plan_path: Path, repo: Repository) -> dict[str, str]:
    """:func:`protected_snapshots` of this plan's state in ``repo``; empty when there is
    no state yet (forget must not create one)."""
    plan = load_plan_if_any(plan_path)
    path = state_location(plan, plan_path)
    if not has_state(path):
        return {}
    state = StateStore(path)
    try:
        return protected_snapshots(Registry(state), plan, repo)
    finally:
        state.close()
