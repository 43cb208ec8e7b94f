"""Where an eval run's thresholds come from, and the run's verdict.

The plan keeps ``quality:`` (floor, max_drop, alpha, max_errors) on an eval set, a model,
a route and a tier. Each threshold is taken from the most specific place that sets it:
the command line, then the plan's eval set (the one named like the file, or whose path
holds it), the model of ``--model-version MODEL@VERSION``, the route, and the tier of the
first of those that has one; else the default (:data:`DEFAULTS`). A run *passes* when at
most ``max_errors`` examples failed to get an answer and, if a floor is set, its mean
score reaches the floor.

It lives in the plan layer because two siblings read it: :mod:`drkit.evals` (a run's
verdict, the compare command's alpha and max_drop) and the gateway's quality canary (a
route's floor).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from drkit.plan.models import Plan, Quality

#: what applies when neither the command line nor the plan sets a threshold
DEFAULTS: dict[str, float | int | None] = {
    "floor": None,
    "max_drop": 0.0,
    "alpha": 0.05,
    "max_errors": 0,
}


@dataclass(frozen=True, slots=True)
class Thresholds:
    """The resolved thresholds, each with the place it came from (``sources``)."""

    floor: float | None
    max_drop: float
    alpha: float
    max_errors: int
    sources: dict[str, str]

    def verdict(self, mean_score: float, errors: int) -> bool:
        """Whether a run with this mean score and this many errors passes."""
        if errors > self.max_errors:
            return False
        return self.floor is None or mean_score >= self.floor


def _eval_set_entry(plan: Plan, name: str, file: Path | None) -> Any:
    resolved = file.resolve() if file is not None else None
    for es in plan.eval_sets:
        if es.name == name:
            return es
        if resolved is not None:
            root = plan.resolve_path(es.path).resolve()
            if resolved == root or root in resolved.parents:
                return es
    return None


def _places(
    plan: Plan, eval_set: str, file: Path | None, model: str | None, route: str | None
) -> Iterator[tuple[str, Quality | None]]:
    tiers: list[str] = []
    es = _eval_set_entry(plan, eval_set, file)
    if es is not None:
        yield f"eval_sets.{es.name}.quality", es.quality
        if es.tier:
            tiers.append(es.tier)
    for m in plan.models:
        if m.name == model:
            yield f"models.{m.name}.quality", m.quality
            tiers.append(m.tier)
    for r in plan.serving.routes:
        if r.name == route:
            yield f"serving.routes.{r.name}.quality", r.quality
            tiers.append(r.tier)
    if tiers and tiers[0] in plan.tiers:
        yield f"tiers.{tiers[0]}.quality", plan.tiers[tiers[0]].quality


def resolve(
    plan: Plan | None,
    *,
    eval_set: str,
    file: Path | None = None,
    model_version: str | None = None,
    route: str | None = None,
    overrides: dict[str, float | int | None] | None = None,
) -> Thresholds:
    """The thresholds of a run of ``eval_set`` (``overrides``: the command line's, None = unset)."""
    model = model_version.split("@", 1)[0] if model_version and "@" in model_version else None
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for key, value in (overrides or {}).items():
        if value is not None:
            values[key], sources[key] = value, "command line"
    places = list(_places(plan, eval_set, file, model, route)) if plan is not None else []
    for where, quality in places:
        if quality is None:
            continue
        for key in DEFAULTS:
            value = getattr(quality, key)
            if key not in values and value is not None:
                values[key], sources[key] = value, where
    for key, value in DEFAULTS.items():
        if key not in values:
            values[key], sources[key] = value, "default"
    return Thresholds(
        floor=None if values["floor"] is None else float(values["floor"]),
        max_drop=float(values["max_drop"]),
        alpha=float(values["alpha"]),
        max_errors=int(values["max_errors"]),
        sources=sources,
    )
