"""The model registry composed with the repository, the plan and the eval gate.

:mod:`drkit.lineage` keeps the registry as events; this module adds what needs other
layers: checking ``--trained-on DATASET@SNAPSHOT`` against the repository, snapshotting a
version's artifacts directory, resolving ``@MODEL:ALIAS`` route targets, the snapshots
retention must keep (:func:`protected_snapshots`), and the gate of ``promote`` and
``rollback``.

The gate is a callable (:data:`Gate`): ``gate(model, candidate, baseline)`` returns a
:class:`GateResult`. :func:`recorded_eval_gate` is the default: it compares the newest
``eval.run`` events of the two versions on the newest eval-set version they share.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from drkit.errors import CheckFailed, SnapshotNotFound, UsageError
from drkit.lineage.registry import (
    AliasChange,
    DatasetRef,
    ModelVersion,
    Registry,
    check_name,
    check_version,
)
from drkit.plan.models import Plan
from drkit.repository import Repository, Snapshot
from drkit.repository.retention import named_version
from drkit.state.store import Event, StateStore, has_state, state_location
from drkit.workspace.access import load_plan_if_any

#: how far back an alias's versions stay restorable when the plan does not say
DEFAULT_ROLLBACK_WINDOW = 30 * 86400.0


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
    return Registration(registered, new_model)


# --- serving: @MODEL:ALIAS ---------------------------------------------------------------


def resolve_alias_target(
    registry: Registry, model: str, alias: str, provider: str
) -> tuple[str, str]:
    """(upstream model name, version) that ``@MODEL:ALIAS`` names for ``provider`` now."""
    v = registry.version(model, registry.alias(model, alias))
    upstream = v.upstream.get(provider)
    if upstream is None:
        raise UsageError(
            f"@{model}:{alias} is {v.ref}, which has no upstream model for provider {provider!r}",
            hint=f"register the version with --upstream {provider}=MODEL_NAME "
            f"(it has: {', '.join(sorted(v.upstream)) or 'none'})",
        )
    return upstream, v.version


# --- retention: what a rollback needs ----------------------------------------------------


def rollback_window(plan: Plan | None, model: str) -> float:
    for m in plan.models if plan is not None else ():
        if m.name == model and m.rollback_window is not None:
            return float(m.rollback_window)
    return DEFAULT_ROLLBACK_WINDOW


def protected_snapshots(
    registry: Registry, plan: Plan | None, now: float | None = None
) -> dict[str, str]:
    """Snapshot id -> why it is kept: the training data and artifacts of every version an
    alias names now or named within the model's rollback window."""
    now = now if now is not None else datetime.now(UTC).timestamp()
    out: dict[str, str] = {}
    for model in registry.models():
        window = rollback_window(plan, model)
        for alias, versions in sorted(registry.served_within(model, now - window).items()):
            for label in sorted(versions):
                v = registry.version(model, label)
                why = f"lineage {v.ref} ({model}:{alias})"
                for t in v.trained_on:
                    out.setdefault(t.snapshot, why)
                if v.artifacts:
                    out.setdefault(v.artifacts, why)
    return out


# --- the gate ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GateResult:
    """Whether ``candidate`` may serve instead of ``baseline``, with the numbers."""

    passed: bool
    candidate: str
    baseline: str | None
    reason: str
    #: metric -> {"candidate": x, "baseline": y, "delta": x - y}
    metrics: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    eval_set: str | None = None
    eval_runs: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "candidate": self.candidate,
            "baseline": self.baseline,
            "reason": self.reason,
            "eval_set": self.eval_set,
            "metrics": {k: dict(v) for k, v in self.metrics.items()},
            "eval_runs": list(self.eval_runs),
        }


#: ``gate(model, candidate_version, baseline_version or None) -> GateResult``
Gate = Callable[[str, str, str | None], GateResult]

EVAL_RUN = "eval.run"


def _run_model(e: Event) -> tuple[str | None, str | None]:
    d = e.data
    model = d.get("model")
    version = str(d["model_version"]) if d.get("model_version") is not None else d.get("version")
    if model is None and version is not None and "@" in version:
        # `drkit eval run --model-version MODEL@VERSION` (drkit.evals' eval.run event)
        model, version = version.split("@", 1)
    return model, version


def _eval_set_key(e: Event) -> str:
    d = e.data
    version = d.get("eval_set_version") or d.get("eval_set_digest") or d.get("eval_set_snapshot")
    return f"{d.get('eval_set', '?')}@{version or '?'}"


def _scores(e: Event) -> dict[str, float]:
    raw = e.data.get("metrics") or e.data.get("scores") or {}
    if not raw and isinstance(e.data.get("mean_score"), int | float):
        raw = {"mean_score": e.data["mean_score"]}
    return {str(k): float(v) for k, v in dict(raw).items() if isinstance(v, int | float)}


def _paired(base: Event, cand: Event, tolerance: float) -> dict[str, Any] | None:
    """drkit.evals' paired test of two runs' per-example rows (their Parquet files), or
    None when either run has no readable rows (then the recorded metrics decide)."""
    from drkit.evals import compare, read_rows

    paths = [Path(str(e.data["path"])) for e in (base, cand) if e.data.get("path")]
    if len(paths) != 2 or not all(p.is_file() for p in paths):
        return None
    got = compare(read_rows(paths[0]), read_rows(paths[1]), max_drop=tolerance)
    return {
        "regressed": got.regressed,
        "test": got.test,
        "p_value": got.p_value,
        "effect": got.effect,
        "n": got.n,
    }


def eval_runs_of(state: StateStore, model: str, version: str | None = None) -> list[Event]:
    """The ``eval.run`` events of ``model`` (one version, or all), oldest first."""
    out = []
    for e in state.events(kind=EVAL_RUN):
        m, v = _run_model(e)
        if m == model and (version is None or v == version):
            out.append(e)
    return out


def recorded_eval_gate(state: StateStore, tolerance: float = 0.0) -> Gate:
    """The gate over recorded ``eval.run`` events (data: ``model``, ``model_version``,
    ``eval_set``, ``eval_set_version``, ``metrics``, ``passed``).

    Against a baseline (promote): the candidate's newest run, and the baseline's newest
    run on the same eval-set version; it fails when a metric is lower than the
    baseline's by more than ``tolerance`` (higher is better) or the run says
    ``passed: false``. On its own (rollback): its newest run on the model's current
    eval-set version must say ``passed: true``. No run is never a pass."""

    def gate(model: str, candidate: str, baseline: str | None) -> GateResult:
        runs = eval_runs_of(state, model, candidate)
        if not runs:
            return GateResult(False, candidate, baseline, f"no eval run of {model}@{candidate}")
        newest = runs[-1]
        key = _eval_set_key(newest)
        cand = _scores(newest)
        if newest.data.get("passed") is False:
            return GateResult(
                False,
                candidate,
                baseline,
                f"its eval run on {key} failed",
                eval_set=key,
                eval_runs=(str(newest.id),),
            )
        if baseline is None or baseline == candidate:
            # on its own (rollback): a run on the model's current eval-set version that
            # says it passed; "no run" or "no verdict" is not a pass
            all_runs = eval_runs_of(state, model)
            current = _eval_set_key(all_runs[-1])
            on_current = [e for e in runs if _eval_set_key(e) == current]
            if not on_current:
                return GateResult(
                    False,
                    candidate,
                    baseline,
                    f"no eval run on the current eval set {current}",
                    eval_set=current,
                )
            last = on_current[-1]
            ok = last.data.get("passed") is True
            verdict = "passed" if ok else "did not pass"
            return GateResult(
                ok,
                candidate,
                baseline,
                f"its eval run on {current} {verdict}",
                {n: {"candidate": x} for n, x in _scores(last).items()},
                eval_set=current,
                eval_runs=(str(last.id),),
            )
        base_runs = [e for e in eval_runs_of(state, model, baseline) if _eval_set_key(e) == key]
        if not base_runs:
            return GateResult(
                False,
                candidate,
                baseline,
                f"no eval run of {model}@{baseline} on {key}",
                eval_set=key,
                eval_runs=(str(newest.id),),
            )
        base = _scores(base_runs[-1])
        metrics = {
            name: {
                "candidate": cand[name],
                "baseline": base[name],
                "delta": cand[name] - base[name],
            }
            for name in sorted(set(cand) & set(base))
        }
        ids = (str(newest.id), str(base_runs[-1].id))
        paired = _paired(base_runs[-1], newest, tolerance)
        if paired is not None:
            # per-example rows: the paired test decides (one definition: drkit.evals.compare)
            verdict = (
                f"{paired['test']} p={paired['p_value']:.3g} effect {paired['effect']:+.3f}"
                f" over {paired['n']} examples"
            )
            if paired["regressed"]:
                return GateResult(
                    False, candidate, baseline, f"regression on {key}: {verdict}", metrics, key, ids
                )
            return GateResult(
                True, candidate, baseline, f"no regression on {key}: {verdict}", metrics, key, ids
            )
        worse = [n for n, m in metrics.items() if m["delta"] < -tolerance]
        if worse:
            detail = ", ".join(
                f"{n} {metrics[n]['candidate']:.4g} < {metrics[n]['baseline']:.4g}" for n in worse
            )
            return GateResult(
                False, candidate, baseline, f"regression on {key}: {detail}", metrics, key, ids
            )
        return GateResult(
            True, candidate, baseline, f"no regression on {key} vs {baseline}", metrics, key, ids
        )

    return gate


class GateRefused(CheckFailed):
    """The gate found a regression (exit 1); carries the gate's result."""

    def __init__(self, message: str, result: GateResult, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.result = result


def promote(
    registry: Registry, gate: Gate, model: str, version: str, alias: str, *, reason: str | None
) -> tuple[AliasChange, GateResult]:
    """Move ``alias`` to ``version`` if the gate passes against the alias's current version."""
    check_name("alias", alias)
    registry.version(model, version)
    current = registry.aliases_at(model).get(alias)
    if current == version:
        raise UsageError(f"{model}:{alias} is {version} already", hint="nothing to promote")
    result = gate(model, version, current)
    if not result.passed:
        raise GateRefused(
            f"refused: {model}@{version} -> {alias}: {result.reason}",
            result,
            hint=f"`drkit model alias set {model} {alias} {version} --reason ...` overrides "
            "the gate (recorded in the ledger)",
        )
    change = registry.set_alias(
        model,
        alias,
        version,
        reason=reason or f"promoted: {result.reason}",
        eval_runs=result.eval_runs,
        action="promote",
        gate=result.to_json(),
    )
    return change, result


def rollback(
    registry: Registry, gate: Gate, model: str, alias: str, *, reason: str | None
) -> tuple[AliasChange, GateResult, list[GateResult]]:
    """Move ``alias`` to the newest version registered before its current one that passes
    the gate on its own (a version need not beat the one that regressed); returns the
    change, the passing result and the results of the newer versions that failed."""
    current = registry.alias(model, alias)
    versions = [v.version for v in registry.versions(model)]
    earlier = versions[: versions.index(current)]
    failed: list[GateResult] = []
    for candidate in reversed(earlier):
        result = gate(model, candidate, None)
        if result.passed:
            change = registry.set_alias(
                model,
                alias,
                candidate,
                reason=reason or f"rollback from {current}: {result.reason}",
                eval_runs=result.eval_runs,
                action="rollback",
                gate={**result.to_json(), "skipped": [f.to_json() for f in failed]},
            )
            return change, result, failed
        failed.append(result)
    tried = "; ".join(f"{f.candidate}: {f.reason}" for f in failed) or "none registered before it"
    raise CheckFailed(
        f"no earlier version of {model} passes the gate ({model}:{alias} stays {current}); "
        f"tried {tried}",
        hint=f"evaluate an earlier version, or set the alias by hand: "
        f"drkit model alias set {model} {alias} VERSION --reason ...",
    )


def eval_gate(state: StateStore, tolerance: float = 0.0) -> Gate:
    """The gate ``promote`` and ``rollback`` use (the one place it is wired)."""
    return recorded_eval_gate(state, tolerance)


def lineage_protected(plan_path: Path) -> dict[str, str]:
    """:func:`protected_snapshots` of this plan's state; empty when there is no state yet
    (forget must not create one)."""
    plan = load_plan_if_any(plan_path)
    path = state_location(plan, plan_path)
    if not has_state(path):
        return {}
    state = StateStore(path)
    try:
        return protected_snapshots(Registry(state), plan)
    finally:
        state.close()
