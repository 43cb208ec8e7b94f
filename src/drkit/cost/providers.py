"""Provider risk: each vendor's SLA beside its measured availability, and whether each
route could switch to its secondaries today (``drkit providers``).

Switching readiness of a route's secondary target: its vendor's SLA is recorded, its SLA
credits are not counted as DR (DR701), and it took traffic recently: a ``gateway.failover``
event whose ``data.to`` is that target within the window, or a passing failover drill in
the window (the drill fails the primary over to the secondaries), and its vendor's status feed does
not announce an outage (the newest ``gateway.status_feed_outage`` / ``_clear`` event of the
window; a feed the gateway never reported on counts as clear), and its newest eval run in
the window did not fail the eval gate (``eval.run`` events: ``data.target`` is the target,
or the run through the route was served by it alone; ``passed``). A secondary no eval run
reached is ``not evaluated``: shown, not counted against it (quality is checked where eval
runs exist), and it can carry what the route's clients send: no ``gateway.translation_refused``
event for the route and target in the window (the gateway's translation probe translates a
sample of each route's requests to every other-dialect target's dialect and records the
fields the translator refuses).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from drkit.cost.availability import route_availability
from drkit.plan.analysis import route_operators
from drkit.plan.models import Plan
from drkit.state.store import StateStore

EvalGate = Literal["passed", "failed", "not evaluated"]


@dataclass(frozen=True)
class SecondaryReadiness:
    route: str
    target: str
    vendor: str
    sla_recorded: bool
    credits_not_dr: bool
    served_recently: bool
    feed_clear: bool = True
    eval_gate: EvalGate = "not evaluated"
    #: fields the route's clients send that this target's dialect cannot carry (in the
    #: window): ``{"field", "reason", "dialect", "hint"}``
    refused: tuple[dict[str, str], ...] = ()

    @property
    def ready(self) -> bool:
        return (
            self.sla_recorded
            and self.credits_not_dr
            and self.served_recently
            and self.feed_clear
            and self.eval_gate != "failed"
            and not self.refused
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "route": self.route,
            "target": self.target,
            "vendor": self.vendor,
            "sla_recorded": self.sla_recorded,
            "credits_not_dr": self.credits_not_dr,
            "served_recently": self.served_recently,
            "feed_clear": self.feed_clear,
            "eval_gate": self.eval_gate,
            "translatable": not self.refused,
            "refused": [dict(r) for r in self.refused],
            "ready": self.ready,
        }


def providers_report(
    plan: Plan,
    measured: Mapping[str, float],
    state: StateStore | None,
    *,
    now: float,
    window: float,
    drill_scenarios: tuple[str, ...] = (),
) -> dict[str, Any]:
    """SLA vs measured per vendor, composite availability and readiness per route."""
    vendors = list(
        dict.fromkeys(v for r in plan.serving.routes for v in route_operators(r))
        | {p.name: None for p in plan.providers}
    )
    feeds = _feeds(state, now - window) if state is not None else {}
    by_name = {p.name: p for p in plan.providers}
    rows = []
    for v in vendors:
        p = by_name.get(v)
        rows.append(
            {
                "vendor": v,
                "sla": p.sla if p else None,
                "measured": None if v not in measured else round(measured[v] * 100, 4),
                "credits_counted_as_dr": bool(p and p.credits_counted_as_dr),
                "routes": [r.name for r in plan.serving.routes if v in route_operators(r)],
                "status_url": p.status_url if p else None,
                "status_feed": feeds.get(v),
            }
        )
    tried: set[str] = set()
    gates: dict[str, EvalGate] = {}  # target -> its newest eval run's verdict
    drilled = False
    refused: dict[tuple[str, str], dict[str, dict[str, str]]] = {}  # (route, target) -> field
    if state is not None:
        refused = _refusals(state, now - window)
        for e in state.events(kind="gateway.failover", since=now - window):
            if isinstance(e.data.get("to"), str):
                tried.add(e.data["to"])
        for e in state.events(kind="eval.run", since=now - window):  # oldest first
            served = e.data.get("served_by")
            who = e.data.get("target") or (
                served[0] if isinstance(served, list) and len(served) == 1 else None
            )
            if isinstance(who, str) and isinstance(e.data.get("passed"), bool):
                gates[who] = "passed" if e.data["passed"] else "failed"
        drilled = any(
            d.verdict == "pass" and d.at >= now - window
            for s in drill_scenarios
            for d in state.drills(s)
        )
    readiness = []
    for route in plan.serving.routes:
        for t in route.targets[1:]:
            p = by_name.get(t.operator)
            readiness.append(
                SecondaryReadiness(
                    route.name,
                    t.name,
                    t.operator,
                    p is not None and p.sla is not None,
                    not (p and p.credits_counted_as_dr),
                    t.name in tried or drilled,
                    _feed_clear(feeds, t.operator),
                    gates.get(t.name, "not evaluated"),
                    tuple(refused.get((route.name, t.name), {}).values()),
                )
            )
    return {
        "plan": plan.name,
        "window_s": window,
        "providers": rows,
        "routes": [route_availability(plan, r, measured).to_json() for r in plan.serving.routes],
        "readiness": [r.to_json() for r in readiness],
        "ready": all(r.ready for r in readiness),
    }


def _feed_clear(feeds: dict[str, dict[str, Any]], vendor: str) -> bool:
    """False while the vendor's newest outage-or-clear feed event is an outage."""
    return (feeds.get(vendor) or {}).get("state") != "outage"


def _refusals(state: StateStore, since: float) -> dict[tuple[str, str], dict[str, dict[str, str]]]:
    """(route, target) -> field -> what the gateway's translation probe recorded refused."""
    out: dict[tuple[str, str], dict[str, dict[str, str]]] = {}
    for e in state.events(kind="gateway.translation_refused", since=since):
        d = e.data
        if not (isinstance(d.get("route"), str) and isinstance(d.get("target"), str)):
            continue
        name, dialect, why = str(d.get("field")), str(d.get("dialect")), str(d.get("reason", ""))
        out.setdefault((d["route"], d["target"]), {})[name] = {
            "field": name,
            "reason": why,
            "dialect": dialect,
            "hint": f"the route's clients send {name}, which the {dialect} dialect of "
            f"{d['target']} cannot carry ({why}): stop sending it, or make the secondary "
            "a target of the clients' dialect",
        }
    return out


def _feeds(state: StateStore, since: float) -> dict[str, dict[str, Any]]:
    """vendor -> its newest status-feed event (and when its feed was last unreadable)."""
    feeds: dict[str, dict[str, Any]] = {}
    for e in state.events(kind="gateway.", since=since):
        if not e.kind.startswith("gateway.status_feed_"):
            continue
        row = feeds.setdefault(e.component, {"state": None, "unreachable_at": None})
        if e.kind == "gateway.status_feed_unreachable":
            row["unreachable_at"] = e.at  # the feed unread says nothing of the provider
            continue
        row.update(
            state=e.kind.removeprefix("gateway.status_feed_"),
            at=e.at,
            level=e.data.get("level"),
            description=e.data.get("description"),
        )
    return feeds
