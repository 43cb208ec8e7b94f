"""Where eval history lives for a plan, and where its runs are indexed.

The history is the directory of the plan's first ``eval_results`` component (so
``drkit backup`` snapshots it into the repository like any file tree, ``drkit copy``
replicates it and ``drkit restore`` brings it back; DuckDB reads it in place), else
``<state_dir>/evals`` beside drkit's state. ``--history`` (``$DRKIT_EVAL_HISTORY``)
overrides both. Each run is indexed in drkit's state as an ``eval.run`` event; the
state is the plan's (:func:`drkit.state.store.state_location`: a PostgreSQL state
too). Without a plan file the defaults are ``.drkit/evals`` and ``.drkit/state.db``
beside where the plan would be.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from drkit.errors import UsageError
from drkit.plan.models import Plan
from drkit.state.store import (
    StateStore,
    default_state_path,
    state_location,
)
from drkit.workspace.access import load_plan_if_any


@dataclass(frozen=True, slots=True)
class EvalPlace:
    """The plan (None without a plan file), the history directory and where the state is."""

    plan: Plan | None
    history: Path
    #: the ``eval_results`` component that holds ``history`` (None: not backed up)
    component: str | None
    #: drkit's state: its SQLite file or its ``postgresql://`` URL
    state: Path | str

    def record(self, kind: str, subject: str, message: str, data: dict[str, Any]) -> None:
        state = StateStore(self.state)
        try:
            state.record_event(kind, subject, message, data)
        finally:
            state.close()

    def gateway_url(self) -> str | None:
        """The plan's gateway (``serving.gateway.host:port``), or None without a plan."""
        if self.plan is None:
            return None
        gw = self.plan.serving.gateway
        host = "127.0.0.1" if gw.host in ("0.0.0.0", "::", "") else gw.host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{gw.port}"

    def check_route(self, route: str) -> None:
        """``UsageError`` when the plan has routes and none is called ``route``."""
        if self.plan is None or not self.plan.serving.routes:
            return
        names = [r.name for r in self.plan.serving.routes]
        if route not in names:
            raise UsageError(
                f"--route {route!r}: the plan has no such route",
                hint="routes: " + ", ".join(names),
            )


def eval_place(plan_path: Path, history: Path | None = None) -> EvalPlace:
    """Where the eval history and drkit's state of the plan at ``plan_path`` are."""
    plan = load_plan_if_any(plan_path)
    state = state_location(plan, plan_path)
    if plan is None:
        default = history or default_state_path(plan_path).parent / "evals"
        return EvalPlace(None, default, None, state)
    if history is not None:
        return EvalPlace(plan, history, _component_at(plan, history), state)
    if plan.eval_results:
        comp = plan.eval_results[0]
        return EvalPlace(plan, plan.resolve_path(comp.path), comp.name, state)
    return EvalPlace(plan, plan.resolve_path(plan.state_dir) / "evals", None, state)


def _component_at(plan: Plan, history: Path) -> str | None:
    resolved = history.resolve()
    for comp in plan.eval_results:
        if plan.resolve_path(comp.path).resolve() == resolved:
            return comp.name
    return None
