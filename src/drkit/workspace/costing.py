"""``drkit cost`` and ``drkit providers``: measure what the repositories store and what
drkit's state recorded, then price it (:mod:`drkit.cost`).

Composed here because it needs the repositories (opened with the plan's passwords) and
the drills' scenario catalogue (which activity a drill counts as).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from drkit.connectors.objectstore.registry import open_store
from drkit.cost.history import state_figures
from drkit.cost.measure import RepoUsage, repository_usage
from drkit.cost.model import Measurements
from drkit.errors import DrkitError

if TYPE_CHECKING:
    from drkit.workspace.workspace import Workspace


def measure(ws: Workspace, *, now: float | None = None) -> Measurements:
    """Every repository of the plan that opens, and the state when drkit ran here."""
    from drkit.workspace.workspace import ACTIVITY_SCENARIOS

    moment = time.time() if now is None else now
    repos: dict[str, RepoUsage | str] = {}
    for model in ws.stack().repositories():
        try:
            if not open_store(model.url).exists("config"):
                repos[model.name] = "no repository yet"
                continue
            with ws.stack().open_repository(model.name) as repo:
                repos[model.name] = repository_usage(repo, model.name, model.region, now=moment)
        except DrkitError as exc:
            repos[model.name] = str(exc)
    state = None
    if ws.state_path.exists():
        activities = {s: a for a, names in ACTIVITY_SCENARIOS.items() for s in names}
        vendor_of = {t.name: t.operator for r in ws.plan.serving.routes for t in r.targets}
        state = state_figures(ws.state(), activities=activities, vendor_of=vendor_of, now=moment)
    return Measurements(repos, state)


def providers(ws: Workspace, *, window: float, now: float | None = None) -> dict[str, Any]:
    """``drkit providers``: :func:`drkit.cost.providers.providers_report` with the
    state's measured availability over ``window``."""
    from drkit.cost.history import measured_availability
    from drkit.cost.providers import providers_report
    from drkit.workspace.workspace import ACTIVITY_SCENARIOS

    moment = time.time() if now is None else now
    state = ws.state() if ws.state_path.exists() else None
    vendor_of = {t.name: t.operator for r in ws.plan.serving.routes for t in r.targets}
    measured = measured_availability(state, vendor_of, moment, window) if state else {}
    return providers_report(
        ws.plan,
        measured,
        state,
        now=moment,
        window=window,
        drill_scenarios=ACTIVITY_SCENARIOS["failover_drill"],
    )
