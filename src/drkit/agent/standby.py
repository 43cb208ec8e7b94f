"""Warm standbys in the agent: their measured lag as RPO rows (``drkit rpo``, ``/metrics``).

A standby's lag (docs/standby.md) is what a regional failover to it loses: the
component's actual RPO for that failover, next to the repositories' snapshot ages.
"""

from __future__ import annotations

import time
from urllib.parse import urlsplit

from drkit.agent.rpo import MeasuredRpo
from drkit.workspace.standby import standby_lag
from drkit.workspace.workspace import Workspace


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
