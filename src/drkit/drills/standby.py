"""Warm standbys in the ``region-outage`` drill: the promotion's RTO next to a restore's.

For each vector store whose standby is outside the lost region, the standby is checked as
a promotion would check it (the source region is gone: standby against its ledger and
golden queries, no source) and timed; nothing is marked promoted (a rehearsal).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from drkit.connectors.vectorstore.registry import open_vector_store, safe_url
from drkit.errors import DrkitError
from drkit.plan.models import VectorStore as VectorStoreModel
from drkit.replication.standby import Ledger, check_standby, lag_of, ledger_file


def rehearse_promotions(
    stores: list[VectorStoreModel], lost_region: str, state_dir: Path
) -> list[dict[str, Any]]:
    """One result per vector store with a standby outside ``lost_region``."""
    out: list[dict[str, Any]] = []
    for vs in stores:
        sb = vs.standby
        if sb is None or sb.region == lost_region:
            continue
        t0 = time.perf_counter()
        res: dict[str, Any] = {"component": vs.name, "standby": safe_url(sb.engine), "ok": False}
        path = ledger_file(state_dir, vs.name)
        if not path.exists():
            res["problem"] = "never synced"
            out.append(res)
            continue
        try:
            with Ledger(path) as ledger, open_vector_store(sb.engine) as standby:
                names = ledger.collections()
                res["lag_s"] = lag_of(ledger, names)
                checks = [check_standby(vs.name, standby, n, ledger) for n in names]
            res["ok"] = bool(checks) and all(c.ok for c in checks)
            res["records"] = sum(c.standby_records for c in checks)
            if not res["ok"]:
                res["problem"] = next(
                    (p for c in checks for p in c.problems), "no collection synced"
                )
        except DrkitError as exc:
            res["problem"] = str(exc)
        res["promotion_rto_s"] = round(time.perf_counter() - t0, 3)
        out.append(res)
    return out
