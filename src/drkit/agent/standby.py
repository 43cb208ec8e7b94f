"""Warm standbys in the agent: their measured lag as RPO rows (``drkit rpo``, ``/metrics``).

A standby's lag (docs/standby.md) is what a regional failover to it loses: the
component's actual RPO for that failover, next to the repositories' snapshot ages.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from drkit.agent.rpo import MeasuredRpo
from drkit.plan.models import Plan
from drkit.plan.schedule import IntervalSchedule
from drkit.workspace.standby import standby_lag
from drkit.workspace.workspace import Workspace

if TYPE_CHECKING:
    from drkit.agent.jobs import Job


def standby_rows(ws: Workspace, now: float | None = None) -> list[MeasuredRpo]:
    """One row per vector store with a standby (lag None: never fully synced, exceeded)."""
    moment = time.time() if now is None else now
    rows = []
    for vs in ws.plan.vector_stores:
        sb = vs.standby
        if sb is None or vs.tier not in ws.plan.tiers:
            continue
        error = None
        try:
            lag = standby_lag(ws, vs.name, moment)
        except Exception as exc:  # a damaged state file: reported, never a silent pass
            lag, error = None, f"standby state unreadable: {exc}"
        if lag is None and error is None:
            error = "never fully synced"
        rows.append(
            MeasuredRpo(
                vs.name,
                f"standby:{urlsplit(sb.engine).scheme}",
                sb.region,
                ws.plan.tiers[str(vs.tier)].rpo,
                sb.interval,
                lag,
                None,
                error,
            )
        )
    return rows


def standby_jobs(plan: Plan, plan_path: Path) -> list[Job]:
    """``standby:<name>``: one sync pass of each warm standby every ``standby.interval``."""
    from drkit.agent.jobs import Job, _check_minimum, _where

    jobs = []
    for i, vs in enumerate(plan.vector_stores):
        if vs.standby is None:
            continue
        where = _where(plan, "vector_stores", i, "standby", "interval")
        sched = IntervalSchedule(every=vs.standby.interval)
        _check_minimum(plan, sched, where)
        jobs.append(
            Job(f"standby:{vs.name}", "standby", sched, _sync(plan_path, vs.name), origin=where)
        )
    return jobs


def _sync(plan_path: Path, name: str) -> Callable[[], str]:
    def run() -> str:
        from drkit.workspace.standby import sync_standby

        with Workspace.load(plan_path) as ws:
            res = sync_standby(ws, name)
        up = sum(c.upserted for c in res.collections)
        gone = sum(c.deleted for c in res.collections)
        lag = "never fully synced" if res.lag_s is None else f"lag {res.lag_s:.1f}s"
        return f"{up} upserted, {gone} deleted on {res.standby}: {lag}"

    return run
