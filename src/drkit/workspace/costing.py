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
from drkit.state.store import has_state, plan_state_location

if TYPE_CHECKING:
    from pathlib import Path

    from drkit.plan.models import Plan
    from drkit.repository.replica import CopyResult
    from drkit.state.store import StateStore
    from drkit.workspace.workspace import Workspace

#: the event a copy writes: what it sent, so egress is measured (drkit.cost.history)
COPIED = "repository.copied"


def record_copy(state: StateStore, plan: Plan, replica: str, res: CopyResult) -> None:
    """A ``repository.copied`` event for a copy of ``plan``'s primary to ``replica`` (a
    plan repository's name or a URL): the bytes actually sent, as stored."""
    try:
        region: str | None = plan.repository(replica).region
    except KeyError:
        region = None
    plain_url = _shown(replica)
    state.record_event(
        COPIED,
        plain_url,
        f"{len(res.snapshots_copied)} snapshot(s), {res.blobs_copied} blob(s), "
        f"{res.stored_bytes} stored bytes copied to {plain_url}",
        {
            "replica": plain_url,
            "region": region,
            "from": plan.repositories.primary.name,
            "from_region": plan.repositories.primary.region,
            "stored_bytes": res.stored_bytes,
            "components": res.stored_by_component,
            "bytes_copied": res.bytes_copied,
            "blobs_copied": res.blobs_copied,
            "snapshots_copied": len(res.snapshots_copied),
        },
    )


def record_copy_at(plan_path: Path, to: str, res: CopyResult) -> None:
    """:func:`record_copy` in the state of the plan at ``plan_path`` (``to``: the replica's
    name or URL, matched against the plan's repositories); nothing without a plan."""
    from drkit.errors import InputError
    from drkit.state.store import StateStore, plan_state_location
    from drkit.workspace.access import resolve_repository

    try:
        _, loaded, model = resolve_repository(to, plan_path)
    except InputError:
        return
    if loaded is None:
        return  # a copy between two URLs: no plan, no state to record in
    state = StateStore(plan_state_location(loaded))
    try:
        record_copy(state, loaded, model.name if model is not None else to, res)
    finally:
        state.close()


def _shown(ref: str) -> str:
    """A repository reference without credentials or query (names pass unchanged)."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(ref)
    if not parts.scheme or not parts.netloc:
        return ref
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


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
    if has_state(plan_state_location(ws.plan)):
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
    state = ws.state() if has_state(plan_state_location(ws.plan)) else None
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


def gameday_cost_tiers(ws: Workspace) -> list[dict[str, Any]]:
    """``drkit cost``'s per-tier rows for the game-day report (beside RTO/RPO); none, and
    a log warning, when pricing fails: a cost figure never fails a game day."""
    import logging

    from drkit.cost.model import estimate

    try:
        rows: list[dict[str, Any]] = estimate(ws.plan, measure(ws)).to_json(ws.plan)["tiers"]
    except DrkitError as exc:
        logging.getLogger("drkit.cost").warning("game-day report without cost: %s", exc)
        return []
    return rows
