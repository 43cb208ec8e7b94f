"""What drkit's state says was spent: restore-test and drill hours, eval tokens,
incident hours, and the providers' measured availability.

Everything is read from the state store's public API (verifications, drill journals and
events by kind); a kind nobody wrote yet (``eval.run`` before evals exist,
``gateway.*`` before a gateway recorded to the state) simply yields nothing, and the
estimate then falls back to the plan and says so.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from statistics import mean
from typing import Any

from drkit.state.store import StateStore

MONTH_S = 30.0 * 86400.0
YEAR_S = 365.0 * 86400.0


@dataclass
class StateFigures:
    """Measured inputs of the estimate that live in drkit's state."""

    restore_test_hours: dict[str, float] = field(default_factory=dict)  # mean per component
    drill_hours: dict[str, float] = field(default_factory=dict)  # mean per activity
    eval_tokens_month: dict[str, float] = field(default_factory=dict)  # per target/route
    incident_hours_year: float | None = None
    incidents_year: int = 0
    availability: dict[str, float] = field(default_factory=dict)  # per vendor (fraction)
    copied_bytes_month: dict[str, float] = field(default_factory=dict)  # per replica
    #: per replica, per component (copy events that say it; older ones only have totals)
    copied_by_component_month: dict[str, dict[str, float]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "restore_test_hours": self.restore_test_hours,
            "drill_hours": self.drill_hours,
            "eval_tokens_month": self.eval_tokens_month,
            "incident_hours_year": self.incident_hours_year,
            "incidents_year": self.incidents_year,
            "availability": self.availability,
            "copied_bytes_month": self.copied_bytes_month,
            "copied_by_component_month": self.copied_by_component_month,
        }


def restore_test_hours(state: StateStore) -> dict[str, float]:
    """Mean duration (hours) of the recorded restore tests, per component."""
    per: dict[str, list[float]] = defaultdict(list)
    for v in state.verifications():
        per[v.component].append(v.duration_s)
    return {c: mean(d) / 3600.0 for c, d in per.items()}


def drill_hours(state: StateStore, activities: Mapping[str, str]) -> dict[str, float]:
    """Mean wall time (hours) of the drills of each activity (``scenario -> activity``)."""
    per: dict[str, list[float]] = defaultdict(list)
    for d in state.drills():
        activity = activities.get(d.scenario)
        start, end = d.journal.get("started_at"), d.journal.get("ended_at")
        if activity is None or not isinstance(start, int | float):
            continue
        if isinstance(end, int | float) and end >= start:
            per[activity].append(float(end) - float(start))
    return {a: mean(d) / 3600.0 for a, d in per.items()}


def _tokens(data: Mapping[str, Any]) -> float:
    """Tokens of one eval run: ``tokens``, else ``usage.total_tokens``, else the sum of
    ``input_tokens`` and ``output_tokens`` (top level or in ``usage``)."""
    for doc in (data, data.get("usage") if isinstance(data.get("usage"), dict) else {}):
        assert isinstance(doc, Mapping)
        for key in ("tokens", "total_tokens"):
            if isinstance(doc.get(key), int | float):
                return float(doc[key])
        parts = [doc.get(k) for k in ("input_tokens", "output_tokens")]
        if any(isinstance(p, int | float) for p in parts):
            return float(sum(p for p in parts if isinstance(p, int | float)))
    return 0.0


def eval_tokens(state: StateStore, now: float) -> dict[str, float]:
    """Tokens spent by eval runs in the last 30 days, per ``target`` (else ``route``)."""
    out: dict[str, float] = defaultdict(float)
    for e in state.events(kind="eval.run", since=now - MONTH_S):
        where = e.data.get("target") or e.data.get("route") or e.component
        out[str(where)] += _tokens(e.data)
    return dict(out)


def incidents(state: StateStore, now: float) -> tuple[int, float | None]:
    """Incidents opened in the last year and their hours (open until resolved, or now)."""
    opened: dict[str, float] = {}
    resolved: dict[str, float] = {}
    for e in state.events(kind="incident.", since=now - YEAR_S):
        key = str(e.data.get("id") or e.component)
        if e.kind == "incident.opened":
            opened.setdefault(key, e.at)
        elif e.kind == "incident.resolved":
            resolved[key] = e.at
    if not opened:
        return 0, None
    hours = sum((resolved.get(k, now) - at) / 3600.0 for k, at in opened.items())
    return len(opened), max(0.0, hours)


def measured_availability(
    state: StateStore, vendor_of: Mapping[str, str], now: float, window: float
) -> dict[str, float]:
    """Per vendor: the share of ``window`` during which not all its targets were ejected,
    from ``gateway.ejection`` / ``gateway.recovery`` events (``vendor_of``: target ->
    vendor). Vendors without any gateway event in the window are left out (unknown)."""
    start = now - window
    events = state.events(kind="gateway.", since=start)
    if not events:
        return {}
    down_since: dict[str, float] = {}
    down: dict[str, list[tuple[float, float]]] = defaultdict(list)
    seen: set[str] = set()
    for e in events:
        target = e.component.rsplit("/", 1)[-1]
        if target not in vendor_of:
            continue
        seen.add(vendor_of[target])
        if e.kind == "gateway.ejection":
            down_since.setdefault(target, e.at)
        elif e.kind == "gateway.recovery" and target in down_since:
            down[target].append((down_since.pop(target), e.at))
    for target, since in down_since.items():
        down[target].append((since, now))
    out: dict[str, float] = {}
    for vendor in seen:
        targets = [t for t, v in vendor_of.items() if v == vendor]
        out[vendor] = 1.0 - _all_down(targets, down) / window
    return out


def _all_down(targets: list[str], down: Mapping[str, list[tuple[float, float]]]) -> float:
    """Seconds during which every one of ``targets`` was down (intervals intersected)."""
    if not targets or any(not down.get(t) for t in targets):
        return 0.0
    common = sorted(down[targets[0]])
    for t in targets[1:]:
        merged: list[tuple[float, float]] = []
        for a0, a1 in common:
            for b0, b1 in down[t]:
                lo, hi = max(a0, b0), min(a1, b1)
                if hi > lo:
                    merged.append((lo, hi))
        common = merged
    return sum(b - a for a, b in common)


def copied_by_component(state: StateStore, now: float) -> dict[str, dict[str, float]]:
    """Stored bytes copied per replica and component in the last 30 days, from the
    ``repository.copied`` events whose ``data.components`` says it."""
    out: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for e in state.events(kind="repository.copied", since=now - MONTH_S):
        per = e.data.get("components")
        if not isinstance(per, dict):
            continue
        row = out[e.component]
        for comp, n in per.items():
            if isinstance(n, int | float):
                row[str(comp)] += float(n)
    return {k: dict(v) for k, v in out.items()}


def copied_bytes(state: StateStore, now: float) -> dict[str, float]:
    """Stored bytes copied per replica in the last 30 days (``repository.copied`` events)."""
    out: dict[str, float] = defaultdict(float)
    for e in state.events(kind="repository.copied", since=now - MONTH_S):
        n = e.data.get("stored_bytes", e.data.get("bytes_copied"))
        if isinstance(n, int | float):
            out[e.component] += float(n)
    return dict(out)


def state_figures(
    state: StateStore,
    *,
    activities: Mapping[str, str],
    vendor_of: Mapping[str, str],
    now: float | None = None,
    window: float = MONTH_S,
) -> StateFigures:
    moment = time.time() if now is None else now
    count, hours = incidents(state, moment)
    return StateFigures(
        restore_test_hours=restore_test_hours(state),
        drill_hours=drill_hours(state, activities),
        eval_tokens_month=eval_tokens(state, moment),
        incident_hours_year=hours,
        incidents_year=count,
        availability=measured_availability(state, vendor_of, moment, window),
        copied_bytes_month=copied_bytes(state, moment),
        copied_by_component_month=copied_by_component(state, moment),
    )
