"""Warm standbys of the plan's vector stores: sync, check, promote (docs/standby.md).

Composes the plan (``vector_stores[].standby``), the connectors, the sync state
(``<state_dir>/standby/COMPONENT.sqlite``, :class:`~drkit.replication.standby.Ledger`) and
drkit's events (``standby.synced``, ``standby.verified``, ``standby.promoted``).
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from drkit.connectors.vectorstore.base import VectorStore
from drkit.connectors.vectorstore.registry import open_vector_store, safe_url
from drkit.errors import CollectionNotFound, EngineUnreachable, UsageError
from drkit.plan.models import Plan, Standby
from drkit.plan.models import VectorStore as VectorStoreModel
from drkit.replication.standby import (
    CollectionSync,
    Ledger,
    StandbyCheck,
    check_standby,
    lag_of,
    ledger_file,
    source_collections,
    sync_collection,
)
from drkit.workspace.workspace import Workspace

PROMOTED = "promoted"


def standby_of(plan: Plan, name: str) -> tuple[VectorStoreModel, Standby]:
    """The plan's vector store ``name`` and its standby; :class:`UsageError` otherwise."""
    for vs in plan.vector_stores:
        if vs.name == name:
            if vs.standby is None:
                raise UsageError(
                    f"vector store {name!r} has no standby in the plan",
                    hint=f"add `standby: {{engine: URL, region: REGION}}` to {name!r}",
                )
            return vs, vs.standby
    with_standby = [v.name for v in plan.vector_stores if v.standby is not None]
    raise UsageError(
        f"the plan has no vector store {name!r}",
        hint="vector stores with a standby: " + (", ".join(with_standby) or "none"),
    )


def ledger_path(ws: Workspace, name: str) -> Path:
    return ledger_file(ws.state_dir, name)


def open_ledger(ws: Workspace, name: str, standby: Standby) -> Ledger:
    """The standby's sync state; forgotten when the plan now names another standby engine."""
    ledger = Ledger(ledger_path(ws, name))
    url = safe_url(standby.engine)
    if ledger.get("standby") != url:
        ledger.reset()
        ledger.put("standby", url)
    return ledger


@dataclass(slots=True)
class StandbySync:
    component: str
    standby: str
    region: str
    collections: list[CollectionSync] = field(default_factory=list)
    lag_s: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "component": self.component,
            "standby": self.standby,
            "region": self.region,
            "lag_s": None if self.lag_s is None else round(self.lag_s, 3),
            "collections": [c.to_json() for c in self.collections],
        }


def sync_standby(ws: Workspace, name: str, *, batch_size: int | None = None) -> StandbySync:
    """One sync pass of every collection of ``name`` into its standby."""
    vs, sb = standby_of(ws.plan, name)
    with open_ledger(ws, name, sb) as ledger:
        promoted = ledger.get(PROMOTED)
        if promoted:
            raise UsageError(
                f"the standby of {name!r} was promoted at {time.ctime(promoted['at'])}: "
                "sync stopped",
                hint="run with the plan `standby promote --plan-out` wrote, or delete "
                f"{ledger.path} to start a new standby",
            )
        out = StandbySync(name, safe_url(sb.engine), sb.region)
        with (
            open_vector_store(vs.engine, create=False) as source,
            open_vector_store(sb.engine) as standby,
        ):
            for coll in source_collections(source, vs.collections):
                rep = sync_collection(
                    source, standby, coll, ledger, batch_size=batch_size or sb.batch_size
                )
                out.collections.append(rep)
        out.lag_s = lag_of(ledger, [c.collection for c in out.collections])
    ws.state().record_event(
        "standby.synced",
        name,
        f"{sum(c.upserted for c in out.collections)} upserted, "
        f"{sum(c.deleted for c in out.collections)} deleted on {out.standby}",
        {
            "standby": out.standby,
            "region": out.region,
            "lag_s": out.lag_s,
            "upserted": sum(c.upserted for c in out.collections),
            "deleted": sum(c.deleted for c in out.collections),
            "collections": [c.collection for c in out.collections],
        },
    )
    return out


def standby_lag(ws: Workspace, name: str, now: float | None = None) -> float | None:
    """The measured lag of ``name``'s standby (None: never fully synced)."""
    _, sb = standby_of(ws.plan, name)
    path = ledger_path(ws, name)
    if not path.exists():
        return None
    with Ledger(path) as ledger:
        if ledger.get("standby") != safe_url(sb.engine):
            return None
        names = ledger.collections()
        return lag_of(ledger, names, now) if names else None


def _source(vs: VectorStoreModel, notes: list[str]) -> VectorStore | None:
    try:
        return open_vector_store(vs.engine, create=False)
    except (EngineUnreachable, UsageError) as exc:
        notes.append(
            f"the source {safe_url(vs.engine)} cannot be read ({exc}): standby checked alone"
        )
        return None


def verify_standby(ws: Workspace, name: str, *, queries: int = 50) -> list[StandbyCheck]:
    """Check every synced collection of ``name``'s standby (sync may keep running)."""
    vs, sb = standby_of(ws.plan, name)
    notes: list[str] = []
    out: list[StandbyCheck] = []
    with open_ledger(ws, name, sb) as ledger, contextlib.ExitStack() as stack:
        names = ledger.collections()
        if not names:
            raise UsageError(
                f"the standby of {name!r} was never synced: nothing to check",
                hint=f"drkit standby sync {name}",
            )
        standby = stack.enter_context(open_vector_store(sb.engine))
        source = _source(vs, notes)
        if source is not None:
            stack.callback(source.close)
        for coll in names:
            try:
                rep = check_standby(name, standby, coll, ledger, source=source, queries=queries)
            except EngineUnreachable as exc:
                if source is None:
                    raise
                notes.append(f"the source stopped answering ({exc}): standby checked alone")
                source = None
                rep = check_standby(name, standby, coll, ledger, queries=queries)
            except CollectionNotFound:
                rep = StandbyCheck(name, coll, standby.url)
                rep.problems.append(f"the standby has no collection {coll!r}")
            rep.notes += notes
            out.append(rep)
    ok = all(r.ok for r in out)
    ws.state().record_event(
        "standby.verified",
        name,
        f"standby {'ok' if ok else 'FAILED'}: {len(out)} collection(s)",
        {"ok": ok, "standby": safe_url(sb.engine), "checks": [r.to_json() for r in out]},
    )
    return out


@dataclass(slots=True)
class Promotion:
    component: str
    standby: str
    region: str
    checks: list[StandbyCheck]
    plan_yaml: str
    lag_s: float | None
    duration_s: float

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def to_json(self) -> dict[str, Any]:
        return {
            "component": self.component,
            "standby": self.standby,
            "region": self.region,
            "ok": self.ok,
            "lag_s": None if self.lag_s is None else round(self.lag_s, 3),
            "duration_s": self.duration_s,
            "checks": [c.to_json() for c in self.checks],
        }


def promoted_plan(plan_path: Path, name: str, old_region: str | None) -> str:
    """The plan file's text with ``name``'s standby as its engine, as written (``${ENV}``
    kept); the old primary becomes the standby, for the failback once its region is back.
    Comments are not kept (the file is re-serialised)."""
    doc = yaml.safe_load(plan_path.read_text())
    for entry in doc.get("vector_stores") or []:
        if entry.get("name") == name and isinstance(entry.get("standby"), dict):
            new = dict(entry["standby"])
            old = {**new, "engine": entry["engine"]}
            if old_region is not None:
                old["region"] = old_region
            entry["engine"], entry["region"], entry["standby"] = new["engine"], new["region"], old
    return str(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))


def promote_standby(ws: Workspace, name: str) -> Promotion:
    """Stop sync (the ledger is marked promoted), check the standby, and build the plan
    with the standby as the primary. Checked before the mark: a failed check leaves
    sync running and raises nothing (the caller reports ``ok``)."""
    t0 = time.perf_counter()
    vs, sb = standby_of(ws.plan, name)
    lag = standby_lag(ws, name)
    checks = verify_standby(ws, name)
    old_region = ws.plan.component_region(vs)
    text = promoted_plan(ws.plan_path, name, old_region)
    promo = Promotion(
        name,
        safe_url(sb.engine),
        sb.region,
        checks,
        text,
        lag,
        0.0,
    )
    if promo.ok:
        with open_ledger(ws, name, sb) as ledger:
            ledger.put(PROMOTED, {"at": time.time(), "lag_s": lag})
    promo.duration_s = round(time.perf_counter() - t0, 3)
    ws.state().record_event(
        "standby.promoted" if promo.ok else "standby.promote_refused",
        name,
        f"standby {promo.standby} in {sb.region} "
        + ("promoted" if promo.ok else "not promoted: its check failed"),
        {"standby": promo.standby, "region": sb.region, "lag_s": lag, "rto_s": promo.duration_s},
    )
    return promo
