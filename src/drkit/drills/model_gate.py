"""The model gate: the registry (:mod:`drkit.lineage`) composed with the eval history and
:mod:`drkit.evals`' paired test, and the ``promote`` and ``rollback`` it guards.

It lives at the drills layer (above both siblings) so that the model-regression drill
rolls back with the very function ``drkit model rollback`` runs; :mod:`drkit.workspace.models`
re-exports it for the CLI.

The gate is a callable (:data:`Gate`): ``gate(model, candidate, baseline)`` returns a
:class:`GateResult`. :func:`recorded_eval_gate` is the default: it compares the newest
``eval.run`` events of the two versions on the newest eval-set version they share.
"""

from __future__ import annotations

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

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drkit.errors import CheckFailed, UsageError
from drkit.lineage.graph import EVAL_RUN, eval_runs_of, eval_set_key
from drkit.lineage.registry import AliasChange, Registry, check_name
from drkit.state.store import Event, StateStore


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


def _harness_changed(base: Event, cand: Event) -> str | None:
    """Why two runs cannot be compared when both recorded eval harness commits that
    differ (``harness_commit``, docs/evals.md#the-eval-harness); else None."""
    b, c = base.data.get("harness_commit"), cand.data.get("harness_commit")
    if not b or not c or b == c:
        return None
    return (
        f"the runs used different eval harness commits ({str(b)[:12]} vs {str(c)[:12]}): "
        "rerun the baseline's eval with the candidate's harness"
    )


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
        if newest.data.get("passed") is False:
            key = eval_set_key(newest)
            return GateResult(
                False,
                candidate,
                baseline,
                f"its eval run on {key} failed",
                eval_set=key,
                eval_runs=(str(newest.id),),
            )
        if baseline is None or baseline == candidate:
            return _on_its_own(state, model, candidate, baseline, runs)
        return _against_baseline(state, model, candidate, baseline, newest, tolerance)

    return gate


def _on_its_own(
    state: StateStore, model: str, candidate: str, baseline: str | None, runs: list[Event]
) -> GateResult:
    """The gate without a baseline (rollback): the candidate's newest run on the model's
    current eval-set version says it passed; "no run" or "no verdict" is not a pass."""
    all_runs = eval_runs_of(state, model)
    current = eval_set_key(all_runs[-1])
    on_current = [e for e in runs if eval_set_key(e) == current]
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


def _against_baseline(
    state: StateStore,
    model: str,
    candidate: str,
    baseline: str,
    newest: Event,
    tolerance: float,
) -> GateResult:
    """The gate against a baseline (promote): the candidate's newest run ``newest`` and the
    baseline's newest run on the same eval-set version."""
    key = eval_set_key(newest)
    base_runs = [e for e in eval_runs_of(state, model, baseline) if eval_set_key(e) == key]
    if not base_runs:
        return GateResult(
            False,
            candidate,
            baseline,
            f"no eval run of {model}@{baseline} on {key}",
            eval_set=key,
            eval_runs=(str(newest.id),),
        )
    cand, base = _scores(newest), _scores(base_runs[-1])
    metrics = {
        name: {
            "candidate": cand[name],
            "baseline": base[name],
            "delta": cand[name] - base[name],
        }
        for name in sorted(set(cand) & set(base))
    }
    ids = (str(newest.id), str(base_runs[-1].id))
    changed = _harness_changed(base_runs[-1], newest)
    if changed:  # the scores moved with the code that computed them
        return GateResult(False, candidate, baseline, changed, metrics, key, ids)
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
