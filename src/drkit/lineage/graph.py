"""The lineage graph: dataset snapshots -> model versions -> eval runs -> alias events.

Nothing here is stored on its own: the graph is joined at read time from the registry's
events (``model.registered``, ``model.alias_set``) and the ``eval.run`` events of
:mod:`drkit.evals` (joined on their ``model_version``, ``MODEL@VERSION``), so it is as
durable as drkit's state and rebuilt with it.

- :func:`show`: everything a version came from (its training snapshots, artifacts),
  and everything that happened to it since (eval runs, alias moves, what names it now);
- :func:`impact`: the blast radius of a dataset snapshot (every version trained on it,
  their eval runs and alias moves, and the aliases naming them now);
- :func:`closure` / :func:`needed`: what serving and rebuilding a version needs, and
  which versions must stay restorable (an alias names them now, or did within the
  model's rollback window) — what retention keeps and ``drkit lineage check`` verifies;
  :func:`eval_set_versions`: the eval-set versions (content digests) the runs that gate
  those versions ran on (which snapshot holds each is the repository's business:
  :mod:`drkit.workspace.eval_set_closure`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from drkit.errors import UsageError
from drkit.lineage.registry import AliasChange, ModelVersion, Registry
from drkit.state.store import Event, StateStore

EVAL_RUN = "eval.run"
#: a model-regression drill rehearsed versions of the model (in a sandbox registry)
DRILLED = "model.drill"


def eval_run_model(e: Event) -> tuple[str | None, str | None]:
    """(model, version) an ``eval.run`` event evaluated (``None`` parts when it names none)."""
    d = e.data
    model = d.get("model")
    version = str(d["model_version"]) if d.get("model_version") is not None else d.get("version")
    if model is None and version is not None and "@" in version:
        # `drkit eval run --model-version MODEL@VERSION` (drkit.evals' eval.run event)
        model, version = version.split("@", 1)
    return model, version


def eval_set_key(e: Event) -> str:
    """``EVAL_SET@VERSION`` of an ``eval.run`` event (its digest when it has no label)."""
    d = e.data
    version = d.get("eval_set_version") or d.get("eval_set_digest") or d.get("eval_set_snapshot")
    return f"{d.get('eval_set', '?')}@{version or '?'}"


def eval_runs_of(state: StateStore, model: str, version: str | None = None) -> list[Event]:
    """The ``eval.run`` events of ``model`` (one version, or all), oldest first."""
    out = []
    for e in state.events(kind=EVAL_RUN):
        m, v = eval_run_model(e)
        if m == model and (version is None or v == version):
            out.append(e)
    return out


def _run_json(e: Event) -> dict[str, Any]:
    d = e.data
    _, version = eval_run_model(e)
    return {
        "event": e.id,
        "at": datetime.fromtimestamp(e.at, UTC),
        "run_id": d.get("run_id"),
        "version": version,
        "eval_set": eval_set_key(e),
        "mean_score": d.get("mean_score"),
        "passed": d.get("passed"),
        "route": d.get("route"),
    }


@dataclass(frozen=True, slots=True)
class Need:
    """One thing a version needs from the repository."""

    #: ``dataset`` (a training snapshot), ``artifacts`` (the version's files) or
    #: ``eval_set`` (a snapshot holding the eval set a gating run ran on)
    kind: str
    component: str
    #: "" for an eval set no snapshot holds (``component``: where it was looked for)
    snapshot: str
    label: str
    #: an eval set's content digest (BLAKE3 of the file's bytes)
    digest: str | None = None

    def to_json(self) -> dict[str, Any]:
        out = {
            "kind": self.kind,
            "component": self.component,
            "snapshot": self.snapshot,
            "label": self.label,
        }
        if self.digest is not None:
            out["digest"] = self.digest
        return out


def closure(v: ModelVersion) -> list[Need]:
    """What serving and rebuilding ``v`` needs from a repository: its training snapshots
    and its artifacts snapshot (its upstream model names live in the registry itself)."""
    out = [Need("dataset", t.dataset, t.snapshot, t.label) for t in v.trained_on]
    if v.artifacts:
        component = v.artifacts_component or v.model
        out.append(Need("artifacts", component, v.artifacts, f"{component}@{v.artifacts[:8]}"))
    return out


@dataclass(frozen=True, slots=True)
class EvalSetVersion:
    """An eval set at one content digest, and the runs of a version that used it."""

    name: str
    digest: str
    runs: tuple[str, ...]

    @property
    def label(self) -> str:
        return f"{self.name}@{self.digest[:8]}"


def _digest(e: Event) -> str | None:
    d = e.data.get("eval_set_digest")
    if isinstance(d, str) and len(d) == 64 and all(c in "0123456789abcdef" for c in d):
        return d
    return None  # a run that recorded no content digest (an imported label) names no file


def eval_set_versions(
    registry: Registry, versions: set[tuple[str, str]]
) -> dict[tuple[str, str], list[EvalSetVersion]]:
    """(model, version) -> the eval-set versions the runs that gate it ran on: its own
    ``eval.run`` events, and the runs each alias move to it recorded as its justification
    (a promote's includes the baseline's run on the same eval-set version). Runs that
    recorded no content digest are left out. One pass over the eval runs."""
    by_id: dict[str, Event] = {}
    runs: dict[tuple[str, str], list[Event]] = {key: [] for key in versions}
    for e in registry.state.events(kind=EVAL_RUN):
        by_id[str(e.id)] = e
        model, version = eval_run_model(e)
        if model is not None and version is not None and (model, version) in runs:
            runs[(model, version)].append(e)
    for model in {m for m, _ in versions}:
        for change in registry.history(model):
            if (model, change.to_version) in runs:
                runs[(model, change.to_version)] += [
                    by_id[r] for r in change.eval_runs if r in by_id
                ]
    out: dict[tuple[str, str], list[EvalSetVersion]] = {}
    for key, events in runs.items():
        found: dict[tuple[str, str], list[str]] = {}
        for e in events:
            digest = _digest(e)
            if digest is not None:
                name = str(e.data.get("eval_set") or "?")
                ids = found.setdefault((name, digest), [])
                run = str(e.data.get("run_id") or e.id)
                if run not in ids:
                    ids.append(run)
        out[key] = [EvalSetVersion(n, d, tuple(r)) for (n, d), r in sorted(found.items())]
    return out


def needed(
    registry: Registry, window: Callable[[str], float], now: float
) -> dict[tuple[str, str], list[str]]:
    """(model, version) -> why it must stay restorable: every version an alias names now
    or named within ``window(model)`` seconds before ``now``."""
    out: dict[tuple[str, str], list[str]] = {}
    for model in registry.models():
        for alias, versions in sorted(registry.served_within(model, now - window(model)).items()):
            current = registry.aliases_at(model).get(alias)
            for v in sorted(versions):
                why = f"{model}:{alias} " + (
                    "names it" if v == current else "named it within the rollback window"
                )
                out.setdefault((model, v), []).append(why)
    return out


def _moves_of(registry: Registry, model: str, versions: set[str]) -> list[AliasChange]:
    return [
        c for c in registry.history(model) if c.to_version in versions or c.from_version in versions
    ]


def show(registry: Registry, model: str, version: str) -> dict[str, Any]:
    """Everything ``MODEL@VERSION`` came from and what happened to it since."""
    v = registry.version(model, version)
    now = registry.aliases_at(model)
    return {
        "model": model,
        "version": v.to_json(),
        "trained_on": [t.to_json() for t in v.trained_on],
        "closure": [n.to_json() for n in closure(v)],
        # by content digest: which snapshot holds each is a repository's (`lineage check`)
        "eval_sets": [
            {"eval_set": es.name, "digest": es.digest, "label": es.label, "runs": list(es.runs)}
            for es in eval_set_versions(registry, {(model, version)})[(model, version)]
        ],
        "eval_runs": [_run_json(e) for e in eval_runs_of(registry.state, model, version)],
        "alias_events": [c.to_json() for c in _moves_of(registry, model, {version})],
        "aliases_now": sorted(a for a, target in now.items() if target == version),
        "drills": [
            {"at": datetime.fromtimestamp(e.at, UTC), **e.data}
            for e in registry.state.events(kind=DRILLED, component=model)
            if version in (e.data.get("versions") or ())
        ],
    }


def impact(registry: Registry, dataset: str, which: str) -> dict[str, Any]:
    """Every version trained on ``DATASET@WHICH`` (a named version, or a snapshot id or
    unique prefix), their eval runs and alias moves, and the aliases naming them now.

    Exit 2 when no registered version was trained on a snapshot of ``dataset`` that
    matches (listing the ones that exist)."""
    users: list[ModelVersion] = []
    known: set[str] = set()
    matched: set[str] = set()
    for model in registry.models():
        for v in registry.versions(model):
            for t in v.trained_on:
                if t.dataset != dataset:
                    continue
                known.add(t.label)
                if which in (t.version, t.snapshot) or (
                    len(which) >= 6 and t.snapshot.startswith(which)
                ):
                    matched.add(t.snapshot)
                    users.append(v)
    if len(matched) > 1:
        raise UsageError(
            f"{dataset}@{which} matches {len(matched)} snapshots",
            hint="give more of the snapshot id",
        )
    if not users:
        raise UsageError(
            f"no model version was trained on {dataset}@{which}",
            hint=f"snapshots of {dataset} that models were trained on: "
            + (", ".join(sorted(known)) or "none"),
        )
    models: list[dict[str, Any]] = []
    runs: list[dict[str, Any]] = []
    moves: list[dict[str, Any]] = []
    serving: list[dict[str, str]] = []
    for model in sorted({v.model for v in users}):
        versions = {v.version for v in users if v.model == model}
        models += [v.to_json() for v in users if v.model == model]
        runs += [
            _run_json(e)
            for e in eval_runs_of(registry.state, model)
            if eval_run_model(e)[1] in versions
        ]
        moves += [c.to_json() for c in _moves_of(registry, model, versions)]
        serving += [
            {"model": model, "alias": a, "version": target}
            for a, target in sorted(registry.aliases_at(model).items())
            if target in versions
        ]
    return {
        "dataset": dataset,
        "snapshot": next(iter(matched)),
        "versions": models,
        "eval_runs": runs,
        "alias_events": moves,
        "aliases_now": serving,
    }
